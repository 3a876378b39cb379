# The hub on a cluster (deploy/kubernetes/machine/console.yaml): the interviewer's console, and the `mlsandbox`
# command that starts and ends sessions from inside the cluster (its service account, mlsandbox-hub's rules).
# It is our image with the whole repository (the starter, the grader, the bases a session is rendered from) and
# git (a session's work history). Build from the repository root, after the model service's image:
#   docker build -f docker/hub.Dockerfile --build-arg MLSANDBOX_IMAGE=mlsandbox/model-service:0.1.0 \
#     -t mlsandbox/hub:0.1.0 .
ARG MLSANDBOX_IMAGE=mlsandbox/model-service:0.1.0
FROM ${MLSANDBOX_IMAGE}

USER root
RUN apt-get update -qq \
    && apt-get install -y -qq --no-install-recommends git >/dev/null \
    && apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin
# The repository, installed in place (its files are where the package looks for them: the starter, the bases).
COPY . /opt/hub
RUN rm -rf /opt/hub/docker/ca-bundle.crt \
    && pip install --no-cache-dir --no-deps -e /opt/hub \
    && python -c "import grading.api, mlsandbox.console.app, mlsandbox.stack.kubernetes.backend" \
    && mkdir -p /data && chown sandbox:sandbox /data
USER sandbox
WORKDIR /opt/hub
# The console's data, the sessions' records and archives: on the hub's volume.
ENV MLSANDBOX_RUN_DIR=/data/run \
    MLSANDBOX_SESSIONS_DIR=/data/sessions
CMD ["python", "-m", "mlsandbox.console.app", "--host", "0.0.0.0", "--port", "8090", "--token-file", "/etc/console/token"]
