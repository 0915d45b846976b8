# JupyterLab settings for the images. The password arrives in the environment and is hashed
# here, so no value is ever pasted into code: quotes or backslashes in it are just characters.
import os

from jupyter_server import __version__ as server_version
from jupyter_server.auth import passwd

c = get_config()  # noqa: F821 (provided by the configuration loader)

hashed = passwd(os.environ["JUPYTER_PASSWORD"])
if int(server_version.split(".")[0]) >= 2:
    c.PasswordIdentityProvider.hashed_password = hashed
    c.IdentityProvider.token = ""
else:
    c.ServerApp.password = hashed
    c.ServerApp.token = ""

c.ServerApp.ip = "0.0.0.0"
c.ServerApp.port = int(os.environ.get("JUPYTER_PORT", "8888"))
c.ServerApp.root_dir = os.environ.get("JUPYTER_ROOT_DIR", "/workspace")
c.ServerApp.open_browser = False
c.ServerApp.allow_root = True
# Cross-site request forgery checks stay on and no foreign origin is trusted.
c.ServerApp.disable_check_xsrf = False
c.ServerApp.allow_origin = ""
