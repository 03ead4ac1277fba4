"""The Connect panel: client commands filled in for this host and registry, per client.

Every snippet is meant to be pasted and run as shown; insecure-registry flags appear only when
the server is plain http, and each command reads the password from the environment rather than
from the command line. Where a password goes in an argument it is one argument
(`--password="..."`): after `-p`, a password starting with "-" would be read as an option."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Snippet:
    key: str
    title: str
    text: str


def snippets(base_url: str, host: str, org: str, registry: str, user: str) -> list[Snippet]:
    plain = base_url.startswith("http://")
    tls = " --tls-verify=false" if plain else ""
    insecure = " --insecure" if plain else ""
    plain_http = " --plain-http" if plain else ""
    prefix = f"{host}/{org}/{registry}"
    index = f"{base_url}/api/v1/{org}/{registry}/python"
    simple = index + "/simple/"
    # pip ignores a plain-http index on any host but localhost unless told to trust it.
    hostname = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    trusted = f" --trusted-host {hostname}" if plain else ""
    uv_env = f"{org}_{registry}".upper().replace("-", "_").replace(".", "_")
    user = user or "USERNAME"
    return [
        Snippet(
            "podman",
            "podman",
            f'echo "$CARGOHOLD_PASSWORD" | podman login{tls} -u {user} --password-stdin {host}\n'
            f"podman tag myimage:latest {prefix}/myimage:latest\n"
            f"podman push{tls} {prefix}/myimage:latest\n"
            f"podman pull{tls} {prefix}/myimage:latest",
        ),
        Snippet(
            "docker",
            "docker",
            (
                f'# plain http: add {host} to "insecure-registries" in '
                "/etc/docker/daemon.json first\n"
                if plain
                else ""
            )
            + f'echo "$CARGOHOLD_PASSWORD" | docker login -u {user} --password-stdin {host}\n'
            f"docker tag myimage:latest {prefix}/myimage:latest\n"
            f"docker push {prefix}/myimage:latest",
        ),
        Snippet(
            "helm",
            "Helm",
            f'echo "$CARGOHOLD_PASSWORD" | helm registry login{insecure} -u {user} '
            f"--password-stdin {host}\n"
            f"helm push{plain_http} mychart-0.1.0.tgz oci://{prefix}/charts",
        ),
        Snippet(
            "oras",
            "ORAS",
            f'echo "$CARGOHOLD_PASSWORD" | oras login{plain_http} -u {user} '
            f"--password-stdin {host}\n"
            f"oras push{plain_http} {prefix}/files:v1 ./report.txt\n"
            f"oras attach{plain_http} --artifact-type application/spdx+json "
            f"{prefix}/myimage:latest ./sbom.spdx.json",
        ),
        Snippet(
            "crane",
            "crane",
            f'echo "$CARGOHOLD_PASSWORD" | crane auth login{insecure} -u {user} '
            f"--password-stdin {host}\n"
            f"crane ls{insecure} {prefix}/myimage\n"
            f"crane copy{insecure} docker.io/library/alpine:latest {prefix}/alpine:latest",
        ),
        Snippet(
            "skopeo",
            "skopeo",
            f"skopeo copy{' --dest-tls-verify=false' if plain else ''} "
            f'--dest-creds "{user}:$CARGOHOLD_PASSWORD" '
            f"docker://docker.io/library/alpine:latest docker://{prefix}/alpine:latest\n"
            f'skopeo inspect{tls} --creds "{user}:$CARGOHOLD_PASSWORD" '
            f"docker://{prefix}/alpine:latest",
        ),
        Snippet(
            "pip",
            "pip",
            f'pip install{trusted} --index-url "{_with_auth(simple, user)}" PROJECT\n'
            "\n# or for every pip command (pip.conf's index-url is the same setting):\n"
            f'export PIP_INDEX_URL="{_with_auth(simple, user)}"\n'
            + (f"export PIP_TRUSTED_HOST={hostname}\n" if plain else "")
            + "\n# pip.conf (pip asks for the password, or takes it from your keyring)\n"
            "[global]\n"
            f"index-url = {_with_auth(simple, user, password=False)}"
            + (f"\ntrusted-host = {hostname}" if plain else ""),
        ),
        Snippet(
            "twine",
            "twine",
            f"twine upload --repository-url {index}/ -u {user} "
            '--password="$CARGOHOLD_PASSWORD" dist/*\n'
            "\n# or once, in ~/.pypirc, then: twine upload -r cargohold dist/*\n"
            "[distutils]\n"
            "index-servers = cargohold\n"
            "\n"
            "[cargohold]\n"
            f"repository = {index}/\n"
            f"username = {user}",
        ),
        Snippet(
            "uv",
            "uv",
            "# pyproject.toml\n"
            "[[tool.uv.index]]\n"
            f'name = "{org}-{registry}"\n'
            f'url = "{index}/simple/"\n'
            f'publish-url = "{index}/"\n'
            "\n# credentials for that index, from the environment:\n"
            f"export UV_INDEX_{uv_env}_USERNAME={user}\n"
            f'export UV_INDEX_{uv_env}_PASSWORD="$CARGOHOLD_PASSWORD"\n'
            "\n"
            f'uv publish --publish-url {index}/ -u {user} --password="$CARGOHOLD_PASSWORD"',
        ),
    ]


def _with_auth(url: str, user: str, password: bool = True) -> str:
    scheme, _, rest = url.partition("://")
    secret = ":$CARGOHOLD_PASSWORD" if password else ""
    return f"{scheme}://{user}{secret}@{rest}"
