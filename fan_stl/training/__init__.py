"""The drivers of the STL method (`fan_stl.stl`): a self-contained training loop (`engine.train`), the launchers of
timm's stock scripts (`train_launcher`: `python -m fan_stl.train`; `validate_launcher`: `python -m fan_stl.validate`),
loading those scripts (`timm_scripts`) and the data-folder guards (`data_checks`).

They assemble a stage only through `fan_stl.stl.build_task` and `fan_stl.stl.build_data`. This layer may import
`fan_stl.stl`, the models, the weights and `fan_stl.robustness` (the folder layouts); `fan_stl.stl` never imports it.
"""
