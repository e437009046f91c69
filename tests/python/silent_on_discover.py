"""Runs a legacy stdio MCP server (the command line given) and drops every
`server/discover` request on its way in, so the server stays silent on it: the one
legacy behaviour no server at hand shows (mcp-server-time, server-everything and the
Python SDK 1.x all answer unknown methods with an error), made with a real server
behind it.

Usage: silent_on_discover.py COMMAND [ARGS...]
"""

import json
import subprocess
import sys

child = subprocess.Popen(sys.argv[1:], stdin=subprocess.PIPE)
for line in sys.stdin.buffer:
    try:
        method = json.loads(line).get("method")
    except (ValueError, AttributeError):
        method = None
    if method == "server/discover":
        continue
    child.stdin.write(line)
    child.stdin.flush()
child.stdin.close()
sys.exit(child.wait())
