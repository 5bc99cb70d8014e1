"""One markdown table of every set evaluated (a row per model), with a line per column saying how it was computed.

Columns appear only when some model has the set. Accuracies are top-1 in %; a corruption family shows its mean
accuracy and, where a normaliser applies, its mCE with the normaliser named in the header (never mixed in one column).
"""
from typing import Any, Callable, List, Mapping, Optional, Sequence, Tuple

from .families import FAMILIES

Getter = Callable[[Mapping[str, Any]], Optional[float]]


def _top1(key: str) -> Getter:
    return lambda r: r.get(key, {}).get('top1')


def _summary(key: str, field: str) -> Getter:
    return lambda r: r.get(key, {}).get('summary', {}).get(field)


def _percent(key: str, field: str) -> Getter:
    return lambda r: None if r.get(key, {}).get(field) is None else 100 * r[key][field]


SET_COLUMNS: Tuple[Tuple[str, str, Getter, str], ...] = (
    ('clean', 'clean', _top1('clean'), 'top-1 on the clean folder with the model\'s eval transform'),
    ('real', 'ReaL', _top1('imagenet_real'), 'top-1 against the ReaL labels (images without one left out)'),
    ('v2_mf', 'V2 MF', _top1('imagenetv2_matched_frequency'), 'ImageNetV2 matched-frequency top-1'),
    ('v2_t07', 'V2 T0.7', _top1('imagenetv2_threshold07'), 'ImageNetV2 threshold0.7 top-1'),
    ('v2_ti', 'V2 TI', _top1('imagenetv2_top_images'), 'ImageNetV2 top-images top-1'),
    ('sketch', 'Sketch', _top1('sketch'), 'ImageNet-Sketch top-1 (1000-way)'),
    ('a_clean', 'A-clean', _top1('imagenet_a_clean'), 'clean val images of the 200 IN-A classes, 200 logits'),
    ('a', 'IN-A', _top1('imagenet_a'), 'ImageNet-A top-1 over its 200 logits'),
    ('r_clean', 'R-clean', _top1('imagenet_r_clean'), 'clean val images of the 200 IN-R classes, 200 logits'),
    ('r', 'IN-R', _top1('imagenet_r'), 'ImageNet-R top-1 over its 200 logits'),
    ('shape', 'shape bias %', _percent('cue_conflict', 'shape_bias'),
     'shape / (shape + texture) decisions on cue-conflict stimuli, 16-category mean-probability aggregation'),
    ('occlusion', 'occl. area', _summary('occlusion', 'area'),
     'mean top-1 under 16 px patch drop (area under accuracy vs drop ratio / span)'),
    ('fr', 'P flip rate %', lambda r: None if _summary('imagenet_p', 'mean_flip_rate')(r) is None
     else 100 * r['imagenet_p']['summary']['mean_flip_rate'], 'ImageNet-P mean raw flip rate (not normalised)'),
    ('t5d', 'P top-5 dist.', _summary('imagenet_p', 'mean_top5_distance'), 'ImageNet-P mean raw top-5 distance'),
    ('mfr', 'mFR', _summary('imagenet_p', 'mfr'), 'ImageNet-P mFR relative to the baseline model (= 100)'),
    ('mt5d', 'mT5D', _summary('imagenet_p', 'mt5d'), 'ImageNet-P mT5D relative to the baseline model (= 100)'),
)


def _family_columns(results_list: Sequence[Mapping[str, Any]]) -> List[Tuple[str, Getter, str]]:
    columns = []
    for family in FAMILIES.values():
        summaries = [r.get(family.key, {}).get('summary') for r in results_list if r.get(family.key)]
        if not summaries:
            continue
        count = len(family.corruptions)
        protocols = {r[family.key].get('protocol') for r in results_list if r.get(family.key)}
        where = ' on the RobustBench 5,000-image subset' if 'robustbench' in protocols else ''
        columns.append((f'{family.title} acc', _summary(family.key, 'mean_corruption_accuracy'),
                        f'mean top-1 over its {count} corruptions x 5 severities{where}'))
        for name in dict.fromkeys(s.get('baseline') for s in summaries if s and s.get('mce') is not None):
            source = family.normaliser_source if family.normaliser and name == family.normaliser.name \
                else f'{name} evaluated on the same images (= 100)'
            columns.append((f'{family.title} mCE vs {name}',
                            lambda r, k=family.key, n=name: _summary(k, 'mce')(r)
                            if _summary(k, 'baseline')(r) == n else None,
                            f'mean CE over the {count} corruptions normalised by {source}; lower is better'))
    return columns


def _cell(value: Optional[float]) -> str:
    return '-' if value is None else f'{value:.2f}'


def combined_table(results_list: Sequence[Mapping[str, Any]]) -> str:
    """ The markdown table and its column notes. """
    columns = [(title, get, how) for _, title, get, how in SET_COLUMNS[:10]] + _family_columns(results_list)
    columns += [(title, get, how) for _, title, get, how in SET_COLUMNS[10:]]
    columns = [c for c in columns if any(c[1](r) is not None for r in results_list)]
    lines = ['| model | ' + ' | '.join(c[0] for c in columns) + ' |',
             '|---|' + '---:|' * len(columns)]
    lines += [f'| {r["model"]} | ' + ' | '.join(_cell(c[1](r)) for c in columns) + ' |' for r in results_list]
    lines += [''] + [f'- **{title}**: {how}' for title, _, how in columns]
    notes = _notes(results_list)
    return '\n'.join(lines + ([''] + notes if notes else []))


def _notes(results_list: Sequence[Mapping[str, Any]]) -> List[str]:
    notes = []
    for r in results_list:
        for family in FAMILIES.values():
            notes += [f'- {r["model"]}: {n}' for n in r.get(family.key, {}).get('summary', {}).get('notes', [])]
        note = r.get('imagenet_p', {}).get('summary', {}).get('note')
        if note:
            notes.append(f'- {r["model"]}: ImageNet-P: {note}')
    return notes

