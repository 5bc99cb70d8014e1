"""Refuse to continue a stored run whose recorded settings differ from this run's.

Results files, corruption manifests and the demo's run record each store an identity (a JSON-able dict of what
decides their numbers). Before reusing one, the caller compares it with this run's identity; any difference is one
error that names the differing fields first (nested dicts by their dotted key, e.g. `train.lr`), then each value
there and now (long values shortened), then the fix. Field names come first so that a long value never hides them.
"""
import json
from typing import Any, Iterable, List, Mapping, Optional, Type

_SHOWN = 60  # characters of one value in the message


def differing_fields(stored: Mapping[str, Any], current: Mapping[str, Any],
                     keys: Optional[Iterable[str]] = None, prefix: str = '') -> List[str]:
    """ The (dotted) fields where `stored` and `current` differ, sorted; nested dicts are compared key by key. """
    found = []
    for key in sorted(set(stored) | set(current)) if keys is None else keys:
        there, now = stored.get(key), current.get(key)
        if isinstance(there, Mapping) and isinstance(now, Mapping):
            found += differing_fields(there, now, prefix=f'{prefix}{key}.')
        elif there != now:
            found.append(f'{prefix}{key}')
    return found


def _value(identity: Mapping[str, Any], dotted: str) -> str:
    value: Any = identity
    for part in dotted.split('.'):
        value = value.get(part) if isinstance(value, Mapping) else None
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= _SHOWN else text[:_SHOWN - 3] + '...'


def refuse_other_run(
        stored: Mapping[str, Any],
        current: Mapping[str, Any],
        subject: str,
        fix: str,
        error: Type[Exception] = ValueError,
        keys: Optional[Iterable[str]] = None,
) -> None:
    """ Raise `error('<subject>: <fields> differ (<field>: <there> there, <now> now; ...); <fix>')` when the stored
    identity differs from this run's in any of `keys` (default: every key of either); return when they agree. """
    fields = differing_fields(stored, current, keys)
    if fields:
        shown = '; '.join(f'{f}: {_value(stored, f)} there, {_value(current, f)} now' for f in fields)
        raise error(f'{subject}: {", ".join(fields)} differ{"s" if len(fields) == 1 else ""} ({shown}); {fix}')
