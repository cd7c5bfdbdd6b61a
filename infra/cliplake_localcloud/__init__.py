"""The embedded local cloud, built from `infra/template.yaml`: what `cliplake up`, the demo, the dashboard and the
tests run the pipeline on.

- `cloud.py`: `LocalCloud`, a moto server with the stack deployed from the template (SAM transform →
  CloudFormation), plus the wiring moto skips (`lakewiring.py`, bucket notifications, subscriptions, ...);
- `template.py`: loading and resolving the template; `dispatcher.py`: Lambda's SQS event source mappings;
  `scheduler.py`: the template's schedules; `task_tokens.py`; `environ.py`: each function's environment;
- `identity.py` / `iam_resources.py`: IAM as AWS enforces it (roles, resource-aware authorisation);
- `persistence.py`: the durable data directory (journal + checkpoints); `child.py`: a cloud in a child process;
- `rekognition/`: the Rekognition Video emulator (its own README).

May import: `cliplake` (functions/: it runs the handlers and reads the catalog), its own `rekognition`
subpackage, moto and the libraries; never the CLI (`cliplake_cli`) nor `dashboard` (tests/test_layers.py).
"""
