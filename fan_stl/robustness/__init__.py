"""Robustness evaluation: clean / ImageNet-C / -A / -R accuracy, the mCE family of metrics, corruption generation.

    from fan_stl.robustness import evaluate_robustness, corrupt_folder, format_tables, plot_corruption_errors
    corrupt_folder('val', 'val-c', workers=8)                      # needs: pip install -e ".[robustness]"
    results = evaluate_robustness(model, 'my_model', 'out/my_model.json', clean='val', imagenet_c='val-c')
    print(format_tables([results]))
"""
from .class_maps import LabelMap, dataset_label_map, imagenet1k_wnids, imagenet_subset_label_map
from .corrupt import CorruptionRun, corrupt_folder, corrupt_image
from .evaluate import (
    EvalSettings, error_grid, evaluate_imagefolder, evaluate_imagenet_c, evaluate_robustness, load_baseline,
    load_results,
)
from .imagenet_ar_wnids import IMAGENET_A_WNIDS, IMAGENET_R_WNIDS
from .layouts import ImageNetCLayout, LayoutError, discover_imagenet_c, list_classes
from .metrics import (
    ALEXNET, ALL_CORRUPTIONS, EXTRA_CORRUPTIONS, SEVERITIES, STANDARD_CORRUPTIONS, CorruptionBaseline,
    CorruptionSummary, corruption_errors, mce, mean_corruption_accuracy, relative_mce, summarize_corruptions,
    topk_correct,
)
from .report import format_tables, plot_corruption_errors, summary_row, write_csvs
