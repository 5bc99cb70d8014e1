"""The bottom layer of fan_stl: small helpers every room may use; it imports nothing from fan_stl.

    atomic        files written whole or not at all (temp file in the same folder, fsync, `os.replace`)
    amp           the autocast dtype names ('bfloat16' / 'bf16', 'float16' / 'fp16') and their torch dtypes
    machine       one line describing the machine (GPU or CPU, threads) and the software versions of a run
    run_identity  refuse a stored run (results, manifest, run record) whose recorded settings differ from this run's
    extras        the optional extras and the install hint naming them
"""
