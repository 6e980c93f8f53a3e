"""Publishing a converted folder to the Hugging Face Hub.

`resolve_token` runs before any conversion, so a missing or rejected token fails in a second rather than after
minutes of work. `push` uploads the converted folder in one commit; when it fails, the folder is kept and the
error says how to retry.

Everything goes through `huggingface_hub.HfApi`. Its module constants (`HF_ENDPOINT`, the token file under
`HF_HOME`) are read when huggingface_hub is imported; `endpoint=` overrides the endpoint per call.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from huggingface_hub import HfApi, get_token
from huggingface_hub.errors import HfHubHTTPError

from .. import __version__
from .errors import PushError

__all__ = ["push", "resolve_token"]


def resolve_token(token: str | None, endpoint: str | None = None) -> str:
    """The token to push with: `token` (the CLI reads it from --token-file, standard input or --token), else
    huggingface_hub's usual places (HF_TOKEN, the token `hf auth login` saved).

    Raises `PushError` at once when there is none, when the Hub cannot be reached, or when the Hub rejects the
    token or says it may only read.
    """
    api = _api(endpoint)
    try:
        token = token or get_token()
    except Exception as error:  # only with HF_OIDC_RESOURCE set: the OIDC exchange failed
        raise PushError(f"Could not obtain a Hugging Face token: {error}") from error
    if not token:
        raise PushError(
            f"No Hugging Face token to push to {api.endpoint} with. Set HF_TOKEN, log in once with "
            "`hf auth login`, or pass --token-file PATH (--token - reads it from standard input)."
        )
    try:
        identity = api.whoami(token=token)
    except HfHubHTTPError as error:
        status = error.response.status_code if error.response is not None else None
        if status == 401:
            raise PushError(
                f"{api.endpoint} rejected the Hugging Face token (401 Unauthorized). "
                "Check HF_TOKEN or log in again with `hf auth login --force`."
            ) from error
        raise PushError(f"Could not check the Hugging Face token with {api.endpoint}: {error}") from error
    except Exception as error:  # connection refused, DNS, TLS, timeouts: httpx errors, not HfHubHTTPError
        raise PushError(f"Could not reach {api.endpoint} to check the Hugging Face token: {error}") from error
    role = ((identity.get("auth") or {}).get("accessToken") or {}).get("role")
    if role == "read":
        raise PushError(f"The Hugging Face token of {identity.get('name')!r} is read-only; pushing needs write access.")
    return token


def push(
    folder: Path,
    repo_id: str,
    token: str,
    *,
    endpoint: str | None = None,
    commit_message: str | None = None,
    retry_hint: str | None = None,
) -> str | None:
    """Create `repo_id` if needed and upload every file of `folder` to its `main` branch in one commit.

    (huggingface_hub splits folders of more than 256 files, or over 100 MB sent as regular git files, into
    several commits; a converted model is a handful of files, its weights going through Xet.)

    Returns the new commit id, or None when the remote already holds identical files (no commit is made).
    Raises `PushError`, leaving `folder` untouched, when anything fails; its message names the folder and the
    command to retry with (`retry_hint`, by default an `hf upload` of the folder).
    """
    folder = Path(folder)
    retry = retry_hint or f"hf upload {shlex.quote(repo_id)} {shlex.quote(str(folder))}"
    if not folder.is_dir() or not any(path.is_file() for path in folder.rglob("*")):
        raise PushError(f"Nothing to push: {folder} is not a folder holding files.")
    api = _api(endpoint, token)
    try:
        api.create_repo(repo_id, exist_ok=True)
        head = api.repo_info(repo_id, revision="main").sha  # None for an empty repository
        commit = api.upload_folder(
            repo_id=repo_id,
            folder_path=folder,
            commit_message=commit_message or f"Upload {folder.name} with MultiMolecule",
        )
    except Exception as error:  # HTTP errors, dropped connections, timeouts: all end the same way
        raise PushError(
            f"Pushing {folder} to {repo_id} on {api.endpoint} failed: {error}\n"
            f"The converted files are kept at {folder}.\n"
            f"Retry with: {retry}"
        ) from error
    return None if commit.oid == head else commit.oid


def _api(endpoint: str | None, token: str | None = None) -> HfApi:
    return HfApi(endpoint=endpoint, token=token, library_name="multimolecule", library_version=__version__)
