#!/bin/sh
mkdir -p "$HOME" "$JUPYTERLAB_SETTINGS_DIR/@jupyterlab/apputils-extension" \
  "$JUPYTERLAB_SETTINGS_DIR/@jupyterlab/docmanager-extension"
echo '{"fetchNews": "false"}' > "$JUPYTERLAB_SETTINGS_DIR/@jupyterlab/apputils-extension/notification.jupyterlab-settings"
echo '{"defaultViewers": {"markdown": "Markdown Preview"}}' \
  > "$JUPYTERLAB_SETTINGS_DIR/@jupyterlab/docmanager-extension/plugin.jupyterlab-settings"
mkdir -p /tmp/home/bin && cp /opt/room/reload-rules /tmp/home/bin/reload-rules \
  && chmod 755 /tmp/home/bin/reload-rules
"/opt/venv/bin/python" /opt/room/forward.py tcp:127.0.0.1:8000=tcp:model-server:8000 tcp:127.0.0.1:9090=tcp:prometheus:9090 tcp:127.0.0.1:9093=tcp:alertmanager:9093 >/tmp/.forward.out 2>&1 &
i=0
while [ $i -lt 100 ] && ! grep -q ready /tmp/.forward.out 2>/dev/null; do sleep 0.05; i=$((i + 1)); done
exec "$@"
