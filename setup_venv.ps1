# Set up and use the project's virtual environment on Windows (PowerShell 5.1+ or 7).
#   .\setup_venv.ps1          create/update venv\ (idempotent)
#   .\setup_venv.ps1 run      ... then execute every notebook headless into runs\<notebook>\
#   .\setup_venv.ps1 test     ... then lint with ruff, run the unit tests and every notebook under nbval (smoke profile)
# Environment: $env:SMOKE_TEST=1 (smoke profile for `run`), VENV_DIR (default venv), PYTHON (default python),
#              SMOL_RUNS_DIR (default runs\), SMOL_CACHE_DIR (converted offline model)
param([ValidateSet("setup", "run", "test")][string]$Command = "setup", [Parameter(ValueFromRemainingArguments = $true)][string[]]$PytestArgs)
$ErrorActionPreference = "Stop"
Set-Location $PSScriptRoot
$Venv = if ($env:VENV_DIR) { $env:VENV_DIR } else { "venv" }
$Python = if ($env:PYTHON) { $env:PYTHON } else { "python" }
$VenvPython = Join-Path $Venv "Scripts\python.exe"

function Invoke-Checked([string]$Exe, [string[]]$Arguments) {
    & $Exe @Arguments
    if ($LASTEXITCODE -ne 0) { throw "$Exe $($Arguments -join ' ') failed with exit code $LASTEXITCODE" }
}

function Setup {
    $hash = (Get-FileHash -Algorithm SHA1 -InputStream ([IO.MemoryStream]::new([Text.Encoding]::UTF8.GetBytes(
        (Get-Content requirements.txt -Raw) + (Get-Content requirements-nodeps.txt -Raw))))).Hash.Substring(0, 12).ToLower()
    $stamp = Join-Path $Venv ".installed-$hash"
    if (Test-Path $stamp) {
        Write-Host "venv: $Venv is up to date"
    } else {
        $start = Get-Date
        if (-not (Test-Path $VenvPython)) { Invoke-Checked $Python @("-m", "venv", $Venv) }
        Invoke-Checked $VenvPython @("-m", "pip", "install", "-q", "--upgrade", "pip")
        $torch = (Select-String -Path requirements.txt -Pattern '^torch==').Line
        Invoke-Checked $VenvPython @("-m", "pip", "install", "-q", $torch)
        Invoke-Checked $VenvPython @("-m", "pip", "install", "-q", "-r", "requirements.txt")
        Invoke-Checked $VenvPython @("-m", "pip", "install", "-q", "--no-deps", "-r", "requirements-nodeps.txt")
        Invoke-Checked $VenvPython @("-m", "ipykernel", "install", "--user", "--name", "smol-trainer", "--display-name", "Python (smol-trainer)")
        Get-ChildItem $Venv -Filter ".installed-*" -Force | Remove-Item -Force
        New-Item -ItemType File -Path $stamp | Out-Null
        Write-Host "venv: installed in $([int]((Get-Date) - $start).TotalSeconds) s"
    }
    Invoke-Checked $VenvPython @("-c", "from helpers.models import offline_model_dir; print('offline model:', offline_model_dir())")
}

function Run-Notebooks {
    $runs = if ($env:SMOL_RUNS_DIR) { $env:SMOL_RUNS_DIR } else { "runs" }
    $jupyter = Join-Path $Venv "Scripts\jupyter.exe"
    foreach ($nb in Get-ChildItem notebooks -Filter *.ipynb | Sort-Object Name) {
        $name = $nb.BaseName
        New-Item -ItemType Directory -Force -Path (Join-Path $runs $name) | Out-Null
        Write-Host "== $name"
        $start = Get-Date
        Invoke-Checked $jupyter @("nbconvert", "--to", "notebook", "--execute", $nb.FullName, "--output-dir", (Join-Path $runs $name),
            "--output", "$name.ipynb", "--ExecutePreprocessor.timeout=-1", "--ExecutePreprocessor.kernel_name=python3", "--log-level=WARN")
        Write-Host "   done in $([int]((Get-Date) - $start).TotalSeconds) s"
    }
    $env:SMOL_RUNS_DIR = $runs
    Invoke-Checked $VenvPython @("-m", "helpers.results")
}

function Run-Tests {
    $env:SMOKE_TEST = "1"
    if (-not $env:SMOL_RUNS_DIR) { $env:SMOL_RUNS_DIR = Join-Path $PWD "runs\smoke-tests" }
    # Lint first (seconds): pyflakes, isort and lines of at most 120 characters.
    if (-not $PytestArgs) { Invoke-Checked $VenvPython @("-m", "ruff", "check", ".") }
    Invoke-Checked $VenvPython (@("-m", "pytest") + $PytestArgs)
}

switch ($Command) {
    "setup" { Setup }
    "run" { Setup; Run-Notebooks }
    "test" { Setup; Run-Tests }
}
