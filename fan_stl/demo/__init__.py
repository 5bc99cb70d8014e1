"""The demo room: the STL story end to end on a small image set (`python -m fan_stl demo`, the benchmarks).

    synthetic   the generated shapes set (an ImageFolder whose object masks are known)
    arms        the arms of the comparison (baseline, token labeler, STL student, ...)
    recipe      `DEMO_RECIPE`: the training recipe sized to two CPU cores
    experiment  train every arm, evaluate it clean and corrupted, compare it with the baseline; resumable
    token_maps  where the token heads put the class, measured against the generated masks
    card        the model card of a trained arm's weights folder (loads with `local-dir:`, cites the methods)

It may import every room of the package but the command line (`fan_stl.commands`, `fan_stl.cli`), which imports it.
"""
