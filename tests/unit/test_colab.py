"""helpers.colab: what the install cell does on Colab and elsewhere, with pip replaced by a fake."""

import sys

import pytest

from helpers import colab


class FakeSite:
    """Installed versions that the fake pip changes; also stands in for importlib.metadata lookups."""

    def __init__(self, versions, after_install):
        self.versions, self.after_install, self.commands, self.constraints = dict(versions), after_install, [], []

    def version(self, name):
        return self.versions.get(name)

    def pip(self, command):
        self.commands.append(command)
        if "-c" in command:
            with open(command[command.index("-c") + 1], encoding="utf-8") as f:
                self.constraints.append(f.read().split())
        self.versions.update(self.after_install)


COLAB = {"COLAB_RELEASE_TAG": "release-colab-x"}
BASE = {"torch": "2.11.0+cu128", "numpy": "2.1.3", "transformers": "5.15.0"}


@pytest.fixture
def site(monkeypatch):
    fake = FakeSite(BASE, {"transformers": "5.17.0", "unsloth": "2026.10.9"})
    monkeypatch.setattr(colab, "installed_version", fake.version)
    monkeypatch.setattr(colab, "loaded_distributions", lambda: {})
    return fake


def test_split_pin_refuses_anything_but_an_exact_pin():
    assert colab.split_pin("trl==1.15.0") == ("trl", "1.15.0")
    for bad in ("trl>=1.15", "trl", "==1.0"):
        with pytest.raises(ValueError):
            colab.split_pin(bad)


def test_outside_colab_nothing_is_installed_and_differences_are_named(site, capsys):
    report = colab.install_report(["transformers==5.17.0"], ["unsloth==2026.10.9"], env={}, run=site.pip)
    assert site.commands == [] and report["installed"] is False
    assert report["unmet"] == {"transformers==5.17.0": "5.15.0", "unsloth==2026.10.9": None}
    assert "transformers==5.17.0 (installed: 5.15.0)" in capsys.readouterr().out


def test_on_colab_torch_and_numpy_are_held_and_unsloth_goes_without_dependencies(site):
    report = colab.install_report(
        ["transformers==5.17.0"], ["unsloth==2026.10.9"], env=COLAB, run=site.pip, restart=pytest.fail
    )
    with_deps, no_deps = site.commands
    assert with_deps[:3] == [sys.executable, "-m", "pip"] and with_deps[-1] == "transformers==5.17.0"
    assert "--no-deps" not in with_deps and no_deps[-2:] == ["--no-deps", "unsloth==2026.10.9"]
    assert site.constraints == [["torch==2.11.0+cu128", "numpy==2.1.3"]]
    assert report == {"installed": True, "unmet": {}, "changed": {}}


def test_on_colab_a_second_run_installs_nothing(site):
    site.versions.update(site.after_install)
    report = colab.install_report(["transformers==5.17.0"], ["unsloth==2026.10.9"], env=COLAB, run=site.pip)
    assert report["installed"] is False
    assert site.commands == []


def test_a_replaced_module_that_was_already_imported_restarts_the_runtime(site, monkeypatch, capsys):
    monkeypatch.setattr(colab, "loaded_distributions", lambda: {"transformers": "5.15.0"})
    restarts = []
    report = colab.install_report(
        ["transformers==5.17.0"], ["unsloth==2026.10.9"], env=COLAB, run=site.pip, restart=lambda: restarts.append(1)
    )
    assert restarts == [1] and report["changed"] == {"transformers": ("5.15.0", "5.17.0")}
    assert "transformers 5.15.0 -> 5.17.0" in capsys.readouterr().out


def test_an_install_that_moves_torch_is_an_error(site):
    site.after_install["torch"] = "2.14.1"
    with pytest.raises(RuntimeError, match="moved a package it must keep"):
        colab.install_report(["transformers==5.17.0"], ["unsloth==2026.10.9"], env=COLAB, run=site.pip)


def test_pins_that_pip_did_not_install_are_an_error(site):
    site.after_install.pop("unsloth")
    with pytest.raises(RuntimeError, match="unsloth==2026.10.9"):
        colab.install_report(["transformers==5.17.0"], ["unsloth==2026.10.9"], env=COLAB, run=site.pip)


def test_a_failing_pip_says_what_to_do(monkeypatch, capsys):
    class Done:
        returncode, stdout, stderr = 1, "", "ERROR: ResolutionImpossible"

    monkeypatch.setattr(colab.subprocess, "run", lambda *a, **k: Done())
    with pytest.raises(RuntimeError, match="Restart session"):
        colab._run(["pip", "install", "x"])
    assert "ResolutionImpossible" in capsys.readouterr().err


def test_loaded_distributions_and_held_constraints_read_this_process():
    import numpy  # noqa: F401

    assert colab.loaded_distributions()["numpy"] == numpy.__version__
    assert f"numpy=={numpy.__version__}" in colab.held_constraints()


def test_normalize_gives_the_canonical_distribution_name():
    assert colab.normalize("hf_transfer") == colab.normalize("HF-Transfer") == "hf-transfer"
    assert colab.normalize("zope.interface") == "zope-interface" and colab.normalize("a__b") == "a-b"


def test_the_install_cells_call_prints_and_returns_nothing(capsys):
    assert colab.install([], []) is None  # a cell ending in it shows the printed lines, no dict
    assert "nothing to install" in capsys.readouterr().out
