# The candidate's room: JupyterLab on the workspace, with the room's token.
from pathlib import Path

c = get_config()  # noqa: F821
c.ServerApp.ip = "0.0.0.0"
c.ServerApp.port = 8888
c.ServerApp.terminado_settings = {"shell_command": ["/bin/bash"]}
c.ServerApp.open_browser = False
c.ServerApp.allow_root = False
c.ServerApp.root_dir = '/workspace'
# A remote candidate reaches the door under another host name; the token guards the room.
c.ServerApp.allow_remote_access = True
c.IdentityProvider.token = Path('/opt/room-token/token').read_text().strip()
c.ContentsManager.allow_hidden = False
c.FileContentsManager.delete_to_trash = False
c.LabApp.news_url = None
c.LabApp.check_for_updates_class = "jupyterlab.NeverCheckForUpdate"
# jupyter-lsp would run `npm prefix -g` at start and write npm's logs into the workspace; no language server here.
c.ServerApp.jpserver_extensions = {"jupyter_lsp": False}
c.ServerProxy.servers = {'model-server': {'port': 8000,
                  'absolute_url': False,
                  'launcher_entry': {'enabled': True,
                                     'title': 'Model server API',
                                     'path_info': 'model-server/docs'}},
 'prometheus': {'port': 9090,
                'absolute_url': True,
                'launcher_entry': {'enabled': True,
                                   'title': 'Prometheus',
                                   'path_info': 'prometheus/classic/graph'}},
 'alertmanager': {'port': 9093,
                  'absolute_url': True,
                  'launcher_entry': {'enabled': True,
                                     'title': 'Alertmanager',
                                     'path_info': 'alertmanager/'}}}
