"""Semantic segmentation with FAN / STL backbones: CamVid data, mIoU, smp models, CamVid-C robustness in mIoU.

    from fan_stl.segmentation import CamVid, build_segmenter, evaluate_segmentation
    model = build_segmenter('Unet', 'fan_tiny_8_p4_hybrid', num_classes=11)      # needs the `seg` extra (smp)
    results = evaluate_segmentation(model, 'unet_fan_t', '../camvid', 'out/unet_fan_t.json', size=(352, 480))

This room imports models, weights and robustness only (never stl / training / demo / commands).
"""
from .corrupt import split_corruption, write_camvid_c
from .data import CLASSES, NUM_CLASSES, VOID, CamVid, check_size, list_pairs, read_mask
from .evaluate import SegEvalSettings, evaluate_segmentation, predict_miou, summarize
from .metrics import ConfusionMatrix
from .models import build_segmenter, input_multiple, load_segmenter, save_segmenter
from .report import write_chart, write_csv
