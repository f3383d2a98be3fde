"""Hostile values travel only as typed PSRP parameters and come back byte for byte.

Names, aliases, display names and setting values full of PowerShell metacharacters go through
the write operations and a backup unchanged; the simulated bridge host's invocation log shows
that the only script text ever sent was the constant loader and that every value arrived as
a parameter of an exported module function.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agent.exchange import protocol
from agent.exchange.contract import load_contract
from agent.jobs.backup import run_backup
from tests.agent_helpers import objects_of
from tests.exchange_agent_helpers import bridge_for, exchange_agent

NASTY = (
    'O\'Brien "quoted"; $(Remove-Item C:\\ -Recurse) `whoami` @(1) ${env:PATH} | Out-Host'
    "\r\nline 2\n\tZoë 漢字 🙂 ‮rtl' + \"; exit"
)
BIG = ("10 KB: " + NASTY + " ") * (10240 // (len(NASTY) + 8) + 1)


def _values(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [v for item in value.items() for part in item for v in _values(part)]
    if isinstance(value, list | tuple):
        return [v for item in value for v in _values(item)]
    return []


def test_hostile_values_round_trip_as_parameters_only(tmp_path: Path) -> None:
    assert len(BIG) >= 10240
    with exchange_agent(tmp_path) as (sim, handle, _, rt):
        rule = handle.exchange.settings_of("Get-TransportRule")[0]["Identity"]
        with bridge_for(rt) as bridge:
            nasty = bridge.new_group(
                NASTY, "Distribution", {"DisplayName": NASTY, "Alias": "nasty-dl"}
            )
            big = bridge.new_group("Big one", "Security", {"DisplayName": BIG, "Alias": "big"})
            bridge.set_group(nasty["Guid"], {"MailTip": NASTY, "CustomAttribute1": BIG})
            bridge.apply_setting(
                "Set-HostedContentFilterPolicy", {"AdminDisplayName": NASTY}, "Default"
            )
            bridge.apply_setting("Set-TransportRule", {"Comments": BIG}, rule)
            bridge.new_policy_with_rule(
                "AntiPhish", NASTY, 0, {"AdminDisplayName": BIG}, {"Comments": NASTY}
            )
        report = run_backup(rt, "contoso", force_full=True)
        assert report.status == "succeeded" and report.snapshot is not None
        snap = report.snapshot.id

        dls = objects_of(rt, snap, "distributionGroup")
        assert dls[nasty["ExternalDirectoryObjectId"]]["Name"] == NASTY
        assert dls[nasty["ExternalDirectoryObjectId"]]["DisplayName"] == NASTY
        assert dls[nasty["ExternalDirectoryObjectId"]]["MailTip"] == NASTY
        assert dls[nasty["ExternalDirectoryObjectId"]]["CustomAttribute1"] == BIG
        assert (
            objects_of(rt, snap, "mailEnabledSecurityGroup")[big["ExternalDirectoryObjectId"]][
                "DisplayName"
            ]
            == BIG
        )
        spam = objects_of(rt, snap, "hostedContentFilterPolicy")
        assert spam["Default"]["AdminDisplayName"] == NASTY
        assert objects_of(rt, snap, "transportRule")[rule]["Comments"] == BIG
        assert objects_of(rt, snap, "antiPhishPolicy")[NASTY]["AdminDisplayName"] == BIG
        assert objects_of(rt, snap, "antiPhishRule")[NASTY]["Comments"] == NASTY

        # Restore writes a backed-up value back through the same path, unchanged.
        with bridge_for(rt) as bridge:
            bridge.set_group(
                nasty["Guid"],
                {"MailTip": dls[nasty["ExternalDirectoryObjectId"]]["CustomAttribute1"]},
            )
        after = run_backup(rt, "contoso", force_full=True)
        assert after.snapshot is not None
        assert (
            objects_of(rt, after.snapshot.id, "distributionGroup")[
                nasty["ExternalDirectoryObjectId"]
            ]["MailTip"]
            == BIG
        )

        exported = set(load_contract(protocol.PS_DIR))
        scripts: set[str] = set()
        carried: list[str] = []
        for entry in sim.winrm.log:
            (command,) = entry.invocation.commands  # one command per pipeline
            assert entry.invocation.input == []  # nothing through pipeline input
            if command.is_script:
                scripts.add(command.text)
                assert dict(command.parameters)["ModuleText"] == protocol.module_text()
            else:
                assert command.text in exported, command.text
            assert all(name is not None for name, _ in command.parameters)  # named only
            carried += [v for _, value in command.parameters for v in _values(value)]
            assert NASTY not in command.text and "Remove-Item C" not in command.text
        assert scripts == {protocol.LOADER_SCRIPT}  # the script text never varied
        assert NASTY in carried and BIG in carried  # …and the values came as parameters
        assert not sim.winrm.errors and not sim.server.errors
