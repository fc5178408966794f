"""A small local stand-in for the Hugging Face Hub's file API, for tests (no mocks of our download code).

It serves ``HEAD`` / ``GET /{repo_id}/resolve/{revision}/{filename}`` from files put into it, with the headers
``huggingface_hub`` reads: ``X-Repo-Commit``, ``ETag`` (the sha256 for large files, like the Hub's LFS files),
``Content-Length``; unknown files get 404 with ``X-Error-Code: EntryNotFound``. For publishing it answers the
calls ``HfApi.create_repo`` / ``upload_folder`` / ``create_commit`` / ``create_tag`` make for model repos and
Spaces (repo creation, YAML validation, pre-upload, where every file is a "regular" upload, the NDJSON commit,
tags, a Space's variables). Every request is logged. (The real Hub sends large files to LFS / Xet storage instead; this stand-in keeps
every file whole.)
"""
from __future__ import annotations

import base64
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class HubStandIn:
    def __init__(self):
        self.files: dict[tuple[str, str, str], bytes] = {}
        self.commits: dict[tuple[str, str], str] = {}
        self.log: list[tuple[str, str]] = []
        self.repos: set[str] = set()
        self.repo_types: dict[str, str] = {}
        self.variables: dict[str, dict[str, str]] = {}  # Space -> its variables
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _serve(self, body: bool):
                hub.log.append((self.command, self.path))
                parts = self.path.split("?")[0].strip("/").split("/")
                if len(parts) < 5 or parts[2] != "resolve":
                    return self._error(404, "RepoNotFound")
                repo, rev, fname = "/".join(parts[:2]), parts[3], "/".join(parts[4:])
                data = hub.files.get((repo, rev, fname))
                if data is None:
                    return self._error(404, "EntryNotFound" if (repo, rev) in hub.commits else "RevisionNotFound")
                self.send_response(200)
                self.send_header("X-Repo-Commit", hub.commits[(repo, rev)])
                self.send_header("ETag", '"' + hashlib.sha256(data).hexdigest() + '"')
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Content-Type", "application/octet-stream")
                self.end_headers()
                if body:
                    self.wfile.write(data)

            def _error(self, code, err):
                self.send_response(code)
                self.send_header("X-Error-Code", err)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _json(self, obj, code=200):
                body = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                hub.log.append(("POST", self.path))
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                path = self.path.split("?")[0]
                parts = path.strip("/").split("/")
                if path == "/api/repos/create":
                    req = json.loads(body)
                    repo = f"{req['organization']}/{req['name']}" if req.get("organization") else req["name"]
                    hub.repos.add(repo)
                    hub.repo_types[repo] = req.get("type", "model")
                    return self._json({"url": f"{hub.url}/{repo}", "name": repo})
                if len(parts) == 5 and parts[:2] == ["api", "spaces"] and parts[4] == "variables":
                    req = json.loads(body)
                    hub.variables.setdefault(f"{parts[2]}/{parts[3]}", {})[req["key"]] = req["value"]
                    return self._json({k: {"value": v, "updatedAt": "2026-01-01T00:00:00.000Z"}
                                       for k, v in hub.variables[f"{parts[2]}/{parts[3]}"].items()})
                if path == "/api/validate-yaml":
                    return self._json({"errors": [], "warnings": []})
                if len(parts) >= 6 and parts[0] == "api" and parts[1] in ("models", "spaces"):
                    repo, action, rev = f"{parts[2]}/{parts[3]}", parts[4], "/".join(parts[5:])
                    if action == "preupload":
                        files = json.loads(body)["files"]
                        return self._json({"files": [{"path": f["path"], "uploadMode": "regular",
                                                      "shouldIgnore": False} for f in files]})
                    if action == "commit":
                        sha = hashlib.sha1(body).hexdigest()
                        for line in body.decode().splitlines():
                            item = json.loads(line)
                            if item["key"] == "file":
                                data = base64.b64decode(item["value"]["content"])
                                for r in (rev, sha):
                                    hub.put(repo, r, item["value"]["path"], data)
                        hub.commits[(repo, rev)] = hub.commits[(repo, sha)] = sha
                        return self._json({"commitUrl": f"{hub.url}/{repo}/commit/{sha}", "commitOid": sha,
                                           "pullRequestUrl": None})
                    if action == "tag":
                        tag = json.loads(body)["tag"]
                        for (r, v, f), data in list(hub.files.items()):
                            if r == repo and v == rev:
                                hub.put(repo, tag, f, data)
                        hub.commits[(repo, tag)] = hub.commits[(repo, rev)]
                        return self._json({})
                return self._error(404, "RepoNotFound")

            def do_HEAD(self):
                self._serve(False)

            def do_GET(self):
                self._serve(True)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def put(self, repo_id: str, revision: str, filename: str, data: bytes):
        self.files[(repo_id, revision, filename)] = data
        self.commits.setdefault((repo_id, revision), hashlib.sha1(f"{repo_id}@{revision}".encode()).hexdigest())

    def gets(self, filename: str) -> int:
        return sum(1 for m, p in self.log if m == "GET" and p.split("?")[0].endswith("/" + filename))

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
