"""mlsandbox: run, share and grade ML monitoring sandboxes.

cli/        the command line: parse, dispatch, one error handler
console/    the interviewer's console (a web app over every room on the machine)
course/     the self-paced onboarding course
sessions/   interview sessions: workspace, stack, history, grades, archive
incidents/  packs for the root-cause exercise
stack/      how a sandbox runs: the Sandbox interface, its backends, processes, state, shared services
services/   small processes of their own (the alert receiver, Grafana's secret)
layout.py, config.py, errors.py, say.py, data_files.py: shared by all of the above
"""

import os

# The sandbox reports nothing anywhere; and MLflow 3's usage-telemetry thread sets and unsets a variable of
# os.environ while requests read it (a KeyError seen in training). Every process started from here inherits this.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
