"""A small local stand-in for the Hugging Face Hub's file API, for tests (no mocks of our download code).

It serves ``HEAD`` / ``GET /{repo_id}/resolve/{revision}/{filename}`` from files put into it, with the headers
``huggingface_hub`` reads: ``X-Repo-Commit``, ``ETag`` (the sha256, like the Hub's large files),
``Content-Length``; unknown files get 404 with ``X-Error-Code: EntryNotFound``.

For publishing it answers the calls ``HfApi`` makes (``whoami``, ``create_repo``, ``upload_folder`` /
``create_commit``, ``list_repo_refs``, ``create_tag`` / ``delete_tag``, a Space's variables and hardware), and
refuses what the Hub refuses, as its documentation says (tests/hub_rules.py):

- a README whose metadata the Hub would not take: a Space's front matter with a key, a type or a value that the
  Spaces configuration reference does not document, a ``preload_from_hub`` revision that is not a commit sha (or a
  private repo, which the Hub cannot preload: the real Hub fails the build, this stand-in the commit); a model
  card's ``model-index`` without its required fields. Both at ``/api/validate-yaml`` and at the commit;
- a file over 10 MiB sent inside the commit: ``preupload`` answers ``lfs`` for those (and for binary files), and
  the client must send them through the large-file path first. This stand-in speaks the LFS batch API
  (``{repo}.git/info/lfs/objects/batch``, then ``PUT`` the object and ``verify`` it), which ``huggingface_hub``
  takes without ``hf_xet`` (``HF_HUB_DISABLE_XET``); with ``hf_xet`` it asks ``/xet-write-token`` instead and
  talks to Xet storage (content-addressed chunks, through the Rust client): no stand-in can play that part here,
  so that request is answered 501 and logged, and the tests say so;
- a repo or a tag that exists already (409), as ``create_repo`` / ``create_tag`` expect.
Every request is logged.
"""
from __future__ import annotations

import base64
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlparse

from hub_rules import card_errors

LARGE = 10 * 2**20  # the Hub takes larger files through LFS / Xet only
USER = "test-user"  # whose token the tests use


class HubStandIn:
    def __init__(self):
        self.files: dict[tuple[str, str, str], bytes] = {}
        self.commits: dict[tuple[str, str], str] = {}
        self.log: list[tuple[str, str]] = []
        self.repos: set[str] = set()
        self.repo_types: dict[str, str] = {}
        self.private: set[str] = set()
        self.hardware: dict[str, list[str]] = {}  # Space -> the hardware asked for it, in order
        self.variables: dict[str, dict[str, str]] = {}  # Space -> its variables
        self.tags: dict[str, dict[str, str]] = {}  # repo -> tag -> commit
        self.lfs: dict[str, bytes] = {}  # sha256 -> the object
        self.lfs_paths: set[tuple[str, str]] = set()  # (repo, path) committed as a large file
        self.url = ""
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def put(self, repo_id: str, revision: str, filename: str, data: bytes):
        self.files[(repo_id, revision, filename)] = data
        self.commits.setdefault((repo_id, revision), hashlib.sha1(f"{repo_id}@{revision}".encode()).hexdigest())

    def gets(self, filename: str) -> int:
        return sum(1 for m, p in self.log if m == "GET" and p.split("?")[0].endswith("/" + filename))

    def tree(self, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        return {f: d for (r, v, f), d in self.files.items() if r == repo_id and v == revision}

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    # -- what a commit does --------------------------------------------------------------------------------------
    def commit(self, repo: str, rev: str, body: bytes) -> tuple[int, dict]:
        items = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
        tree = self.tree(repo, rev)
        large = set()
        for item in items:
            value = item["value"]
            if item["key"] == "file":
                data = base64.b64decode(value["content"])
                if len(data) > LARGE:
                    return 400, {"error": f"{value['path']}: files larger than 10 MiB must be stored with LFS / Xet"}
                tree[value["path"]] = data
            elif item["key"] == "lfsFile":
                if value["oid"] not in self.lfs:
                    return 400, {"error": f"{value['path']}: large-file object {value['oid']} was never uploaded"}
                tree[value["path"]] = self.lfs[value["oid"]]
                large.add(value["path"])
            elif item["key"] == "deletedFile":
                tree.pop(value["path"], None)
            elif item["key"] == "deletedFolder":
                tree = {p: d for p, d in tree.items() if not p.startswith(value["path"].rstrip("/") + "/")}
        if "README.md" in tree:
            errors = card_errors(tree["README.md"].decode(), self.repo_types.get(repo, "model"), self.private)
            if errors:
                return 400, {"error": "Invalid metadata in README.md.\n" + "\n".join(f"- {e}" for e in errors)}
        sha = hashlib.sha1(body + repo.encode()).hexdigest()
        for key in [k for k in self.files if k[0] == repo and k[1] == rev]:
            del self.files[key]
        for path, data in tree.items():
            for r in (rev, sha):
                self.files[(repo, r, path)] = data
        self.lfs_paths |= {(repo, p) for p in large}
        self.commits[(repo, rev)] = self.commits[(repo, sha)] = sha
        return 200, {"commitUrl": f"{self.url}/{repo}/commit/{sha}", "commitOid": sha, "pullRequestUrl": None}


def _handler(hub: HubStandIn):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _serve(self, body: bool):
            parts = self.path.split("?")[0].strip("/").split("/")
            if parts[:1] == ["api"]:
                return self._api_get(parts)
            if len(parts) < 5 or parts[2] != "resolve":
                return self._error(404, "RepoNotFound")
            repo, rev, fname = "/".join(parts[:2]), unquote(parts[3]), unquote("/".join(parts[4:]))
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

        def _api_get(self, parts):
            if parts == ["api", "whoami-v2"]:
                return self._json({"type": "user", "name": USER})
            if len(parts) >= 5 and parts[1] in ("models", "spaces"):
                repo, action = f"{parts[2]}/{parts[3]}", parts[4]
                if repo not in hub.repos:
                    return self._error(404, "RepoNotFound")
                if action == "refs":
                    return self._json({"branches": [{"name": "main", "ref": "refs/heads/main",
                                                     "targetCommit": hub.commits.get((repo, "main"), "0" * 40)}],
                                       "converts": [], "tags": [{"name": t, "ref": f"refs/tags/{t}", "targetCommit": c}
                                                                for t, c in hub.tags.get(repo, {}).items()]})
                if action == "tree":
                    rev = unquote(parts[5]) if len(parts) > 5 else "main"
                    return self._json([{"type": "file", "path": p, "size": len(d),
                                        "oid": hashlib.sha1(d).hexdigest()} for p, d in hub.tree(repo, rev).items()])
                if action == "xet-write-token":  # Xet storage: see the module's docstring
                    return self._error(501, "XetNotServedHere")
            return self._error(404, "RepoNotFound")

        def _error(self, code, err, message=""):
            self.send_response(code)
            self.send_header("X-Error-Code", err)
            if message:
                self.send_header("X-Error-Message", message.replace("\n", " "))
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _json(self, obj, code=200):
            body = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))
            out = b""
            while True:
                n = int(self.rfile.readline().split(b";")[0], 16)
                out += self.rfile.read(n)
                self.rfile.readline()
                if n == 0:
                    return out

        def do_POST(self):  # noqa: N802
            hub.log.append(("POST", self.path))
            body = self._body()
            path = urlparse(self.path).path
            parts = path.strip("/").split("/")
            if path == "/api/repos/create":
                return self._create(json.loads(body))
            if path == "/api/validate-yaml":
                req = json.loads(body)
                errors = card_errors(req["content"], req.get("repoType", "model"), hub.private)
                return self._json({"errors": [{"message": e} for e in errors], "warnings": []}, 400 if errors else 200)
            if path.endswith(".git/info/lfs/objects/batch"):
                return self._lfs_batch(json.loads(body))
            if parts[0] == "lfs-verify":
                req = json.loads(body)
                return self._json({}) if req["oid"] in hub.lfs else self._error(404, "EntryNotFound")
            if len(parts) >= 5 and parts[:2] == ["api", "spaces"] and parts[4] in ("variables", "hardware"):
                return self._space_setting(f"{parts[2]}/{parts[3]}", parts[4], json.loads(body))
            if len(parts) >= 6 and parts[0] == "api" and parts[1] in ("models", "spaces"):
                repo, action, rev = f"{parts[2]}/{parts[3]}", parts[4], unquote("/".join(parts[5:]))
                if repo not in hub.repos:
                    return self._error(404, "RepoNotFound")
                if action == "preupload":
                    files = json.loads(body)["files"]
                    return self._json({"files": [{"path": f["path"], "uploadMode": _mode(f), "shouldIgnore": False}
                                                 for f in files]})
                if action == "commit":
                    code, answer = hub.commit(repo, rev, body)
                    return self._json(answer, code)
                if action == "tag":
                    return self._tag(repo, rev, json.loads(body)["tag"])
            return self._error(404, "RepoNotFound")

        def _create(self, req):
            repo = f"{req['organization']}/{req['name']}" if req.get("organization") else f"{USER}/{req['name']}"
            if repo in hub.repos:
                return self._json({"error": "You already created this repo", "url": f"{hub.url}/{repo}"}, 409)
            hub.repos.add(repo)
            hub.repo_types[repo] = req.get("type", "model")
            if req.get("visibility") == "private" or req.get("private"):
                hub.private.add(repo)
            if req.get("hardware"):
                hub.hardware.setdefault(repo, []).append(req["hardware"])
            for v in req.get("variables") or []:
                hub.variables.setdefault(repo, {})[v["key"]] = v["value"]
            return self._json({"url": f"{hub.url}/{repo}", "name": repo})

        def _space_setting(self, repo, what, req):
            if repo not in hub.repos:
                return self._error(404, "RepoNotFound")
            if what == "hardware":
                hub.hardware.setdefault(repo, []).append(req["flavor"])
                return self._json({"stage": "BUILDING", "hardware": {"current": None, "requested": req["flavor"]}})
            hub.variables.setdefault(repo, {})[req["key"]] = req["value"]
            return self._json({k: {"value": v, "updatedAt": "2026-01-01T00:00:00.000Z"}
                               for k, v in hub.variables[repo].items()})

        def _tag(self, repo, rev, tag):
            if tag in hub.tags.get(repo, {}):
                return self._json({"error": f"Tag {tag} already exists"}, 409)
            sha = hub.commits[(repo, rev)]
            hub.tags.setdefault(repo, {})[tag] = sha
            for f, data in hub.tree(repo, rev).items():
                hub.put(repo, tag, f, data)
            hub.commits[(repo, tag)] = sha
            return self._json({})

        def _lfs_batch(self, req):
            objects = []
            for o in req["objects"]:
                entry = {"oid": o["oid"], "size": o["size"]}
                if o["oid"] not in hub.lfs:
                    entry["actions"] = {"upload": {"href": f"{hub.url}/lfs-upload/{o['oid']}/{o['size']}"},
                                        "verify": {"href": f"{hub.url}/lfs-verify"}}
                objects.append(entry)
            return self._json({"transfer": "basic", "objects": objects})

        def do_PUT(self):  # noqa: N802  (an LFS object's upload)
            hub.log.append(("PUT", self.path))
            parts = self.path.strip("/").split("/")
            data = self._body()
            if parts[0] != "lfs-upload" or hashlib.sha256(data).hexdigest() != parts[1] or len(data) != int(parts[2]):
                return self._error(400, "BadObject")
            hub.lfs[parts[1]] = data
            return self._json({})

        def do_DELETE(self):  # noqa: N802
            hub.log.append(("DELETE", self.path))
            parts = urlparse(self.path).path.strip("/").split("/")
            if len(parts) == 6 and parts[0] == "api" and parts[4] == "tag":
                repo, tag = f"{parts[2]}/{parts[3]}", unquote(parts[5])
                if hub.tags.get(repo, {}).pop(tag, None) is None:
                    return self._error(404, "RevisionNotFound")
                for key in [k for k in hub.files if k[0] == repo and k[1] == tag]:
                    del hub.files[key]
                hub.commits.pop((repo, tag), None)
                return self._json({})
            return self._error(404, "RepoNotFound")

        def do_HEAD(self):  # noqa: N802
            hub.log.append(("HEAD", self.path))
            self._serve(False)

        def do_GET(self):  # noqa: N802
            hub.log.append(("GET", self.path))
            self._serve(True)

    return Handler


def _mode(f: dict) -> str:
    """The Hub's answer: large or binary files go to large-file storage."""
    return "lfs" if f["size"] > LARGE or b"\0" in base64.b64decode(f["sample"]) else "regular"
