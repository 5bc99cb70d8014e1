"""Robustness evaluation: clean / ImageNet-C / -A / -R accuracy, the mCE family of metrics, corruption generation.

    from fan_stl.robustness import evaluate_robustness, corrupt_folder, format_tables, plot_corruption_errors
    corrupt_folder('val', 'val-c', workers=8)                      # needs the robustness extra (imagecorruptions-imaug)
    corrupt_tree('leftImg8bit/val', 'cityscapes-c', backend='torch', lossless=True)   # any tree, batched torch
    results = evaluate_robustness(model, 'my_model', 'out/my_model.json', clean='val', imagenet_c='val-c')
    print(format_tables([results]))
    extra = ExtraSets(corruption_sets=['val-c-bar'], real='val', occlusion=[0, 0.5])  # the sets beyond C / A / R
    results = evaluate_robustness(model, 'my_model', 'out/my_model.json', clean='val', extra=extra)
    print(combined_table([results]))

Names load on first use (PEP 562), so `fan_stl.robustness.names` - the corruption names the CLI's help shows - is
importable without torch.
"""
import importlib
from typing import Any, Dict, List

_EXPORTS: Dict[str, List[str]] = {
    'charts': ['write_charts'],
    'class_maps': ['LabelMap', 'dataset_label_map', 'imagenet1k_wnids', 'imagenet_subset_label_map'],
    'combined': ['combined_table'],
    'corrupt': ['CorruptionRun', 'OnTheFlyCorruption', 'corrupt_folder', 'corrupt_image', 'corrupt_tree',
                'read_manifest'],
    'evaluate': [
        'EvalSettings', 'NonFiniteOutputError', 'OnTheFlySpec', 'ResultsMismatchError', 'UnreadableImageError',
        'baseline_from_results', 'error_grid', 'evaluate_corruptions_on_the_fly', 'evaluate_imagefolder',
        'evaluate_imagenet_c', 'evaluate_robustness', 'load_baseline', 'load_results', 'summarize_results'],
    'families': ['FAMILIES', 'CorruptionFamily', 'identify_family', 'summarize_family'],
    'imagenet_ar_wnids': ['IMAGENET_A_WNIDS', 'IMAGENET_R_WNIDS'],
    'layouts': ['ImageNetCLayout', 'LayoutError', 'discover_imagenet_c', 'list_classes'],
    'metrics': [
        'ALEXNET', 'CorruptionBaseline', 'CorruptionSummary', 'corruption_errors', 'mce', 'mean_corruption_accuracy',
        'relative_mce', 'summarize_corruptions', 'topk_correct'],
    'names': ['ALL_CORRUPTIONS', 'EXTRA_CORRUPTIONS', 'SEVERITIES', 'STANDARD_CORRUPTIONS'],
    'report': ['format_tables', 'plot_corruption_errors', 'summary_row', 'write_csvs'],
    'results_csv': ['write_timm_csvs'],
    'robustbench': ['SubsetProtocol', 'model_info', 'validate_model_info'],
    'sets': ['ExtraSets'],
    'tensor_corruption': ['TensorCorruption'],
    'torch_corruptions': ['corrupt_batch'],
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
    value = getattr(importlib.import_module(f'.{_MODULE_OF[name]}', __name__), name)
    globals()[name] = value
    return value


def __dir__() -> List[str]:
    return __all__
