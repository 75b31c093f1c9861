# Set up and use the project's virtual environment on Windows (Windows PowerShell 5.1 or PowerShell 7): the twin of
# setup_venv.sh, same subcommands, same pip steps. Scripts are blocked by PowerShell's default execution policy, so
# start it as
#   powershell -ExecutionPolicy Bypass -File .\setup_venv.ps1 [subcommand ...]      (pwsh instead of powershell on 7)
#   .\setup_venv.ps1          create/update venv\ (idempotent)
#   .\setup_venv.ps1 run [02 05 ...]
#                             ... then execute every notebook (or the ones named) headless into runs\<notebook>\
#   .\setup_venv.ps1 test     ... then lint with ruff, run the unit tests and every notebook under nbval (smoke
#                             profile; two at a time), each copied alone into an empty folder first, then the checks of
#                             their results (python -m tools.run_tests); with pytest args, just those
#   .\setup_venv.ps1 test-plain [02 05 ...]
#                             ... then the plain engine (SMOL_ENGINE=plain: transformers + PEFT + TRL, the engine
#                             Windows without an NVIDIA GPU gets): 02 and 05 (or the ones named) under nbval, smoke
#                             profile, and the results checks of those notebooks
#   .\setup_venv.ps1 test-recipes [pytest args]
#                             ... then the recipes (recipes\*.py): notebook 02's SFT LoRA recipe launched by
#                             `accelerate launch` on two CPU processes (gloo) against one process with twice the
#                             gradient accumulation, and every recipe for a few steps on one process (tests\recipes\)
#   .\setup_venv.ps1 colab-sim
#                             Linux only (it builds a Linux venv and resolves manylinux wheels): says so and exits 2;
#                             use WSL2 and ./setup_venv.sh colab-sim
#   .\setup_venv.ps1 bench [--steps N] ... then train 02's LoRA via Unsloth and via plain TRL+PEFT; runs\bench\
#   .\setup_venv.ps1 gpu-check
#                             Linux only (it runs on a lent Linux GPU machine): says so and exits 2
# Environment: $env:SMOKE_TEST=1 (smoke profile for `run`), VENV_DIR (default venv), PYTHON (default: `python` if it
#              is Python 3.11, else the launcher's `py -3.11`), SMOL_RUNS_DIR (default runs\), SMOL_CACHE_DIR
#              (converted offline model; default ~\.cache\smol-trainer-notebooks), SMOL_TEST_WORKERS (notebooks under
#              test at a time; default 2, or 1 on one core)
# The script changes no environment variable and no location of the window it runs in: what it sets, it restores.
#
# No param() block on purpose: a [Parameter()] attribute would give the script PowerShell's common parameters (test -v
# would become -Verbose, -p and -c would be ambiguous). The automatic $args holds every argument as typed; the first
# is the subcommand and the rest go to pytest or the tool unchanged (none at all when there are none).
$ErrorActionPreference = "Stop"
$Wanted = "3.11"  # the Python the pins are tested with (setup_venv.sh's Linux machine runs 3.11)
$Usage = "usage: setup_venv.ps1 [setup|run [02 ...]|test [pytest args]|test-plain [02 05 ...]|test-recipes [pytest args]|colab-sim (Linux only)|bench [--steps N]|gpu-check (Linux only)]"
$Command = if ($args.Count -gt 0) { [string]$args[0] } else { "setup" }
# (Assigned in two steps: `$x = if (...) { @() }` would leave $null, which PowerShell 7.3+ passes on as "".)
$Rest = @()
if ($args.Count -gt 1) { $Rest = $args[1..($args.Count - 1)] }

function Invoke-Checked([string]$Exe, [object[]]$Arguments, [switch]$Capture) {
    # Every native program runs through here: PowerShell does not stop when one exits non-zero, even under "Stop".
    # -Capture: stdout and stderr come back as lines of text (in Windows PowerShell 5.1 a stderr line would otherwise
    # be an error under "Stop"); when the program fails they go into the error message.
    if (-not (Get-Command $Exe -CommandType Application -ErrorAction SilentlyContinue)) { throw "$Exe`: not found" }
    $Arguments = @($Arguments | Where-Object { $null -ne $_ })  # a $null would reach the program as "" (PowerShell 7.3+)
    if ($Capture) {
        $ErrorActionPreference = "Continue"  # this function's scope only
        $lines = @(& $Exe @Arguments 2>&1 | ForEach-Object { "$_" })
    } else {
        & $Exe @Arguments
    }
    if ($LASTEXITCODE -ne 0) {
        $text = "$Exe $($Arguments -join ' ') failed with exit code $LASTEXITCODE"
        if ($Capture) { $text += ":`n" + ($lines -join "`n") }
        $err = [Exception]::new($text)
        $err.Data["ExitCode"] = $LASTEXITCODE
        throw $err
    }
    if ($Capture) { return $lines }
}

function Get-PythonVersion([string]$Exe, [object[]]$Prefix) {
    # "3.11" for a Python that runs; $null for one that is missing or does not run (the Microsoft Store's stand-in).
    try {
        $out = Invoke-Checked $Exe ($Prefix + @("-c", "import sys; print('%d.%d' % sys.version_info[:2])")) -Capture
    } catch {
        return $null
    }
    return ([string]($out | Select-Object -Last 1)).Trim()
}

function Find-Python {
    # $env:PYTHON if set (a warning when it is not 3.11), else `python` if it is 3.11, else `py -3.11`.
    if ($env:PYTHON) {
        $version = Get-PythonVersion $env:PYTHON @()
        if (-not $version) { throw "PYTHON=$env:PYTHON does not run" }
        if ($version -ne $Wanted) { Write-Warning "PYTHON=$env:PYTHON is Python $version; the pins are tested with $Wanted" }
        return , @($env:PYTHON)
    }
    $version = Get-PythonVersion "python" @()
    if ($version -eq $Wanted) { return , @("python") }
    if (Get-PythonVersion "py" @("-$Wanted")) {
        $why = if ($version) { "is Python $version" } else { "is missing" }
        Write-Host "python $why; using the launcher's py -$Wanted"
        return , @("py", "-$Wanted")
    }
    throw ("Python $Wanted not found (python " + $(if ($version) { "is $version" } else { "is missing" }) +
        ", and py -$Wanted did not run): install it from python.org or with winget install Python.Python.$Wanted, " +
        "or set `$env:PYTHON to its python.exe")
}

function Format-Size([long]$Bytes) {
    # du -sh's style: 812M, 5.1G (1gb, not 1GB: the grammar tests\unit\test_setup_ps1.py parses with reads only that)
    if ($Bytes -ge 1gb) { return "{0:N1}G" -f ($Bytes / 1gb) }
    if ($Bytes -ge 1mb) { return "{0:N0}M" -f ($Bytes / 1mb) }
    return "{0:N0}K" -f ($Bytes / 1kb)
}

function Setup {
    # The stamp hashes the same bytes as setup_venv.sh's (cat requirements.txt requirements-nodeps.txt pyproject.toml).
    $stream = [IO.MemoryStream]::new()
    foreach ($file in "requirements.txt", "requirements-nodeps.txt", "pyproject.toml") {
        $bytes = [IO.File]::ReadAllBytes((Join-Path $PSScriptRoot $file))
        $stream.Write($bytes, 0, $bytes.Length)
    }
    $stream.Position = 0
    $hash = (Get-FileHash -Algorithm SHA1 -InputStream $stream).Hash.Substring(0, 12).ToLower()
    $stamp = Join-Path $Venv ".installed-$hash"
    if (Test-Path $stamp) {
        Write-Host "venv: $Venv is up to date"
    } else {
        $start = Get-Date
        if (-not (Test-Path $VenvPython)) {
            $python = Find-Python
            Invoke-Checked $python[0] (@($python | Select-Object -Skip 1) + @("-m", "venv", $Venv))
        }
        Invoke-Checked $VenvPython @("-m", "pip", "install", "-q", "--upgrade", "pip")
        # torch first, alone: on a machine with a local CPU wheel (and no GPU) that is the one pip takes.
        $torch = (Select-String -Path requirements.txt -Pattern '^torch==').Line
        Invoke-Checked $VenvPython @("-m", "pip", "install", "-q", $torch)
        Invoke-Checked $VenvPython @("-m", "pip", "install", "-q", "-r", "requirements.txt")
        Invoke-Checked $VenvPython @("-m", "pip", "install", "-q", "--no-deps", "-r", "requirements-nodeps.txt")
        # `helpers` importable from any folder (notebooks, tests, a notebook copied elsewhere): an editable install.
        Invoke-Checked $VenvPython @("-m", "pip", "install", "-q", "--no-deps", "-e", ".")
        $null = Invoke-Checked $VenvPython @("-m", "ipykernel", "install", "--user", "--name", "smol-trainer",
            "--display-name", "Python (smol-trainer)") -Capture
        Get-ChildItem $Venv -Filter ".installed-*" -Force | Remove-Item -Force
        $null = New-Item -ItemType File -Path $stamp
        # (-ErrorAction SilentlyContinue: a path past 260 characters must not fail the set-up after the install)
        $size = (Get-ChildItem $Venv -Recurse -File -Force -ErrorAction SilentlyContinue |
            Measure-Object -Property Length -Sum).Sum
        Write-Host "venv: installed in $([int]((Get-Date) - $start).TotalSeconds) s, $(Format-Size $size)"
    }
    # Convert the offline model once (cached; a no-op afterwards).
    try {
        $out = Invoke-Checked $VenvPython @("-c",
            "from helpers.models import offline_model_dir; print('offline model:', offline_model_dir())") -Capture
    } catch {
        throw "setup: converting the offline model failed: $($_.Exception.Message)"
    }
    $out | Where-Object { $_ -like "offline model:*" } | ForEach-Object { Write-Host $_ }
}

function Run-Notebooks([object[]]$Numbers) {
    # Progress as it runs (section headings, printed text, training steps, the profile), expected times from
    # data\reference\, and a table of measured times at the end; Ctrl-C keeps the notebooks that finished. Then the
    # before/after summary, also after a failed notebook, whose error is raised after it.
    $failed = $null
    try {
        Invoke-Checked $VenvPython (@("-m", "tools.run_notebooks") + $Numbers)
    } catch {
        $failed = $_.Exception
    }
    $savedRunsDir = $env:SMOL_RUNS_DIR
    try {
        if (-not $env:SMOL_RUNS_DIR) { $env:SMOL_RUNS_DIR = "runs" }
        Invoke-Checked $VenvPython @("-m", "tools.references")
    } finally {
        $env:SMOL_RUNS_DIR = $savedRunsDir
    }
    if ($failed) { throw $failed }
}

function Run-Tests([object[]]$PytestArgs) {
    # tools.run_tests: ruff, the unit tests, every notebook under nbval (smoke profile, two at a time on two cores),
    # then the checks of what they measured; with pytest args, just those. Runs go to runs\smoke-tests\.
    Invoke-Checked $VenvPython (@("-m", "tools.run_tests") + $PytestArgs)
}

function Run-PlainTests([object[]]$Numbers) {
    # The plain engine, as on Windows without an NVIDIA GPU; its smoke runs go to runs\smoke-tests-plain\.
    Invoke-Checked $VenvPython (@("-m", "tools.run_tests", "--plain") + $Numbers)
}

function Run-RecipeTests([object[]]$PytestArgs) {
    # Each recipe run writes into a temporary folder of its own (the tests set SMOL_RUNS_DIR for it).
    $savedSmokeTest = $env:SMOKE_TEST
    try {
        $env:SMOKE_TEST = "1"
        Invoke-Checked $VenvPython (@("-m", "pytest", "tests/recipes") + $PytestArgs)
    } finally {
        $env:SMOKE_TEST = $savedSmokeTest
    }
}

$Code = 0
$SavedLocation = Get-Location
try {
    Set-Location $PSScriptRoot
    $Venv = [IO.Path]::GetFullPath([IO.Path]::Combine($PSScriptRoot, $(if ($env:VENV_DIR) { $env:VENV_DIR } else { "venv" })))
    $VenvPython = Join-Path $Venv "Scripts\python.exe"
    switch -Exact ($Command) {
        "setup" { Setup }
        "run" { Setup; Run-Notebooks $Rest }
        "test" { Setup; Run-Tests $Rest }
        "test-plain" { Setup; Run-PlainTests $Rest }
        "test-recipes" { Setup; Run-RecipeTests $Rest }
        "colab-sim" {
            # Documented difference from setup_venv.sh: tools.colab_sim needs Linux (venv-colab-sim/bin/python,
            # manylinux wheels).
            [Console]::Error.WriteLine("colab-sim is Linux only: run ./setup_venv.sh colab-sim in WSL2 or on Linux")
            $Code = 2
        }
        "bench" { Setup; Invoke-Checked $VenvPython (@("-m", "tools.bench") + $Rest) }
        "gpu-check" {
            # Documented difference from setup_venv.sh: tools.gpu_check runs on a lent Linux GPU machine.
            [Console]::Error.WriteLine("gpu-check is Linux only: run ./setup_venv.sh gpu-check on the Linux GPU machine")
            $Code = 2
        }
        default {
            [Console]::Error.WriteLine($Usage)
            $Code = 2
        }
    }
} catch {
    [Console]::Error.WriteLine("setup_venv.ps1: $($_.Exception.Message)")
    $Code = if ($_.Exception.Data.Contains("ExitCode")) { [int]$_.Exception.Data["ExitCode"] } else { 1 }
} finally {
    Set-Location $SavedLocation
}
exit $Code
