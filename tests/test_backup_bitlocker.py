"""BitLocker recovery keys: opt-in per tenant, skipped with a reason that says why, stored
encrypted, read once per key (every read is audited), never in logs, the database or output."""

from __future__ import annotations

from pathlib import Path

from agent.config import load_config
from agent.demo import setup_agent
from agent.kinds import known_names
from agent.runtime import Runtime
from agent.simulator.service import READ_PERMISSIONS, Simulator
from tests.agent_helpers import cli, simulated_tenant, state_of

WITH_KEYS = [*READ_PERMISSIONS, "BitLockerKey.Read.All"]


def _config(tmp_path: Path, sim: Simulator, opt_in: bool) -> Path:
    config = setup_agent(tmp_path / "agent", sim)
    if opt_in:
        text = config.read_text()
        marker = "[tenants.contoso.app]"
        assert marker in text
        config.write_text(text.replace(marker, f"backup_bitlocker_keys = true\n\n{marker}"))
    return config


def _backup(config: Path, *extra: str) -> dict[str, dict[str, object]]:
    result = cli("backup", "--tenant", "contoso", "--config", str(config), "--json", *extra)
    assert result.code == 0, result.err
    kinds = result.json()["kinds"]
    return {k["kind"]: k for k in kinds}


def _key_reads(sim: Simulator) -> list[str]:
    """Audited key reads (a $batch lists those of its items)."""
    audits: list[str] = []
    for item in sim.log.items():
        note = item.note.get("audit")
        if note:
            audits += note if isinstance(note, list) else [note]
    return audits


def test_not_enabled_is_skipped_and_no_key_is_read(tmp_path: Path) -> None:
    with simulated_tenant(tmp_path / "sim", users=60, groups=5, graph_permissions=WITH_KEYS) as sim:
        config = _config(tmp_path, sim, opt_in=False)
        kinds = _backup(config)
        assert kinds["bitlockerRecoveryKey"]["status"] == "skipped"
        assert kinds["bitlockerRecoveryKey"]["reason"] == "not enabled for this tenant"
        assert not any("bitlocker" in i.path for i in sim.log.items())
        # The permission list does not ask every tenant for BitLockerKey.Read.All.
        assert "BitLockerKey.Read.All" not in cli("permissions", "--json").json()["read"]


def test_enabled_without_permission_is_skipped_by_name(tmp_path: Path) -> None:
    with simulated_tenant(tmp_path / "sim", users=60, groups=5) as sim:
        config = _config(tmp_path, sim, opt_in=True)
        kinds = _backup(config)
        assert kinds["bitlockerRecoveryKey"]["status"] == "skipped"
        assert kinds["bitlockerRecoveryKey"]["reason"] == "missing BitLockerKey.Read.All"
        assert kinds["device"]["status"] == "succeeded"


def test_keys_are_stored_encrypted_read_once_and_never_leak(tmp_path: Path) -> None:
    with simulated_tenant(
        tmp_path / "sim", users=120, groups=5, graph_permissions=WITH_KEYS
    ) as sim:
        d = sim.tenants["contoso"].directory
        keys = d.objects.bitlocker_keys
        assert len(keys) > 5
        config = _config(tmp_path, sim, opt_in=True)
        out = cli("backup", "--tenant", "contoso", "--config", str(config), "--json")
        assert out.code == 0, out.err
        kinds = {k["kind"]: k for k in out.json()["kinds"]}
        assert kinds["bitlockerRecoveryKey"]["status"] == "succeeded"
        assert kinds["bitlockerRecoveryKey"]["succeeded"] == len(keys)
        assert len(_key_reads(sim)) == len(keys)  # one audited read per key

        rt = Runtime(load_config(config, known_kinds=known_names()))
        latest = rt.catalog.latest_snapshot("contoso")
        assert latest is not None
        stored = {
            oid: rt.repository.get(blob)
            for (kind, oid), blob in state_of(rt, latest.id).items()
            if kind == "bitlockerRecoveryKey"
        }
        rt.close()
        assert {k: v["key"] for k, v in stored.items()} == {k: v["key"] for k, v in keys.items()}
        assert all(v["deviceId"] == keys[k]["deviceId"] for k, v in stored.items())

        # Later backups, full ones included, read no key again; a new key is read once.
        new_key = {**next(iter(keys.values())), "id": "0f0e0d0c-0b0a-4909-8807-060504030201"}
        new_key["key"] = "111111-222222-333333-444444-555555-666666-777777-888888"
        with d.lock:
            keys[new_key["id"]] = new_key
        _backup(config)
        _backup(config, "--full")
        assert len(_key_reads(sim)) == len(keys)

        secrets = [k["key"].encode() for k in keys.values()]
        data_dir = tmp_path / "agent"
        files = [p for p in data_dir.rglob("*") if p.is_file()]
        assert any(p.suffix == ".jsonl" for p in files)  # the log file is among them
        for path in files:
            try:
                content = path.read_bytes()
            except FileNotFoundError:  # SQLite's -wal/-shm go away at checkpoint: merged
                continue
            assert not any(s in content for s in secrets), path
        assert not any(s.decode() in out.out + out.err for s in secrets)
