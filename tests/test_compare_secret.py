"""diff of a secret kind (BitLocker recovery keys): which keys changed, never a key value; a
live compare reads only keys it has never stored (every key read is audited by Entra)."""

from __future__ import annotations

from pathlib import Path

from agent.demo import setup_agent
from agent.simulator.service import READ_PERMISSIONS
from tests.agent_helpers import cli, simulated_tenant

NEW_KEY_ID = "0f0e0d0c-0b0a-4909-8807-060504030201"
NEW_KEY = "111111-222222-333333-444444-555555-666666-777777-888888"


def audited_key_reads(sim) -> int:
    reads = 0
    for item in sim.log.items():
        note = item.note.get("audit")
        reads += len(note) if isinstance(note, list) else int(bool(note))
    return reads


def test_key_changes_are_listed_by_device_without_values(tmp_path: Path) -> None:
    permissions = [*READ_PERMISSIONS, "BitLockerKey.Read.All"]
    with simulated_tenant(
        tmp_path / "sim", users=120, groups=5, graph_permissions=permissions
    ) as sim:
        d = sim.tenants["contoso"].directory
        keys = d.objects.bitlocker_keys
        config = setup_agent(tmp_path / "agent", sim)
        text = config.read_text().replace(
            "[tenants.contoso.app]", "backup_bitlocker_keys = true\n\n[tenants.contoso.app]"
        )
        config.write_text(text)
        c = ("--config", str(config))
        assert cli("backup", "--tenant", "contoso", *c).code == 0

        changed_id, changed = next(iter(keys.items()))
        with d.lock:  # one key's value changes, one key is new
            changed["key"] = "999999-" + changed["key"][7:]
            keys[NEW_KEY_ID] = {**changed, "id": NEW_KEY_ID, "key": NEW_KEY}
        reads_before = audited_key_reads(sim)
        live = cli("diff", "latest", "--live", "--kind", "bitlockerRecoveryKey", *c, "--json")
        assert live.code == 0, live.err
        # Known keys come from the stored versions: only the new one is read (and audited).
        assert audited_key_reads(sim) - reads_before == 1

        assert cli("backup", "--tenant", "contoso", *c).code == 0
        # The stored key of an id is kept, so only the new key shows; what a diff prints
        # of it is its id, device and "secret", never the value.
        report = cli("diff", "latest", "--kind", "bitlockerRecoveryKey", *c, "--json").json()
        objects = {o["id"]: o for o in report["objects"]}
        assert set(objects) == {NEW_KEY_ID}
        assert objects[NEW_KEY_ID]["status"] == "added" and objects[NEW_KEY_ID]["secret"]
        assert objects[NEW_KEY_ID]["label"]  # the device it unlocks
        assert live.json()["objects"] == report["objects"]

        human = cli("diff", "latest", *c)
        history = cli("history", "--kind", "bitlockerRecoveryKey", "--id", changed_id, *c)
        for out in (live.out, human.out, history.out, str(report)):
            assert not any(k["key"] in out for k in keys.values())
            assert "999999" not in out and NEW_KEY not in out
        assert NEW_KEY_ID in human.out
