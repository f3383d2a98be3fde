"""Exchange Online / Defender settings through the bridge: one Export-EbSettings call per
batch of settings kinds, one object per setting object (keyed by its Identity)."""

from __future__ import annotations

from agent.collect.base import CollectContext
from agent.db.catalog import KindResult
from agent.errors import BridgeProtocolError, BridgeTimeout, ExchangeThrottled
from agent.exchange.outcomes import skip_reason

# Get- cmdlets per Export-EbSettings call: few calls, yet one slow or huge cmdlet does not hold
# every other setting hostage to one envelope.
BATCH = 10


def collect_exchange_settings(ctx: CollectContext) -> dict[str, KindResult]:
    assert ctx.bridge is not None  # the job skips bridge kinds without [exchange]
    results: dict[str, KindResult] = {}
    kinds = list(ctx.kinds)
    for start in range(0, len(kinds), BATCH):
        batch = kinds[start : start + BATCH]
        try:
            export = ctx.bridge.export_settings([k.extra["cmdlet"] for k in batch])
        except (BridgeTimeout, BridgeProtocolError, ExchangeThrottled) as exc:
            # This call failed, the session did not: fail its kinds, read the next batch.
            for kind in batch:
                ctx.log("error", f"{kind.title} failed: {exc}", kind=kind.name)
                results[kind.name] = KindResult(
                    kind=kind.name, status="failed", mode="full", reason=str(exc)
                )
            ctx.checkpoint()
            continue
        for kind in batch:
            cmdlet = kind.extra["cmdlet"]
            failure = export.failures.get(cmdlet)
            if failure is not None:
                reason = skip_reason(failure)
                status = "skipped" if reason else "failed"
                ctx.log(
                    "warning" if reason else "error",
                    f"{kind.title}: {'skipped, ' + reason if reason else 'failed'} — {failure}",
                    kind=kind.name,
                )
                results[kind.name] = KindResult(
                    kind=kind.name, status=status, mode="full", reason=reason or str(failure)
                )
                continue
            stager = ctx.stager(kind.name)
            for obj in export.objects.get(cmdlet, []):
                if not isinstance(obj.get(kind.key), str) or not obj[kind.key]:
                    raise BridgeProtocolError(
                        f"{cmdlet} returned an object without {kind.key}.",
                        "Make sure the agent and its ps_scripts module are the same version.",
                    )
                stager.put(obj)
            ctx.report(kind.name, stager.result.succeeded)
            results[kind.name] = stager.finish(full_listing=True)
    return results
