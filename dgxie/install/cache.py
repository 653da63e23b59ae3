"""The validated-render cache for install configs (user-data, preseed, kickstart, meta-data, ...).

Rendering and validating a config costs milliseconds (YAML parse, subiquity's schema); a rack that
boots at once fetches the same few configs again and again. `SeedCache.render()` gives exactly what
`seed.render()` gives, rendering and validating only when something the output depends on changed.

The key is every input the render reads, not a list of row versions to keep up to date:

- the variables the template sees (`seed.node_vars`: node, interfaces, profile, image, boot token,
  the site's config layers, as one canonical JSON text), all but `events_url`, the credential's
  (its other parts, the public URL and the token, are in the key through `seed_url`);
- the `Site` object itself (one per loaded config: a config change is a new `Site`);
- the Jinja2 template objects of the template and everything it includes (Jinja2's `auto_reload`
  hands out a new object when a file changes on disk).

So a change to the node, its token, its profile, its image or the config is a miss on the next
fetch, whichever process made it. Entries hold one version per (node, artifact) and no secret: a
config with a callback URL is stored with a random stand-in for the credential, which each fetch
replaces with the node's install credential (`service.serve_config`). The credential this process
minted last for a node is held apart (`held()`), and handed out again only to a request that has
passed the node's token and address checks, and only while the database still has it as the node's
live `install` credential: a state change, another credential or a mint by another process ends it.

The stand-in is only used when the template passes the credential through verbatim: on a miss
the config is rendered twice, with two different stand-ins, and cached only if the two texts
differ by exactly that swap (a template that encodes the credential, say through `b64`, is
rendered per request). The first is
validated, the second only compared: validation is what costs, and it reads the credential as
opaque URL text (43 characters of [A-Za-z0-9_-], like the stand-in).
"""

from __future__ import annotations

import json
import secrets
import threading
from dataclasses import dataclass, replace
from typing import Any

import jinja2

from dgxie.boot import templates
from dgxie.install import fingerprint, seed
from dgxie.install.fingerprint import Fingerprint
from dgxie.models import Node
from dgxie.models.types import utcnow
from dgxie.nodes import credentials
from dgxie.site import Site

MAX_ENTRIES = 50_000
REUSE_FOR = credentials.TTL / 2  # a held install credential is handed out again while younger than this
CREDENTIAL_VAR = "events_url"  # the one variable that holds the credential (left out of the key)


@dataclass(frozen=True)
class _Entry:
    site: Site
    key: str
    names: tuple[str, ...]
    parts: tuple[jinja2.Template, ...]  # the template and its includes, as loaded when rendered
    template: str
    text: str  # with `stand_in` where the credential goes (only the text: a few KiB per node)
    stand_in: str
    fingerprint: Fingerprint | None = None  # the rows of the last render it answered (`refetch`)


def _key(values: dict[str, Any]) -> str:
    return json.dumps(values, sort_keys=True, default=repr, separators=(",", ":"))


def _parts(site: Site, names: tuple[str, ...]) -> tuple[jinja2.Template, ...]:
    env = templates.environment(site.templates_dir)
    return tuple(env.get_template(n) for n in names)


class SeedCache:
    """One validated render per (node, artifact), reused while its inputs stay the same."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self._entries: dict[tuple[int, str], _Entry] = {}
        self._held: dict[int, str] = {}  # node id -> the install credential this process minted last
        self._lock = threading.Lock()
        self.hits = self.misses = self.refetches = 0

    def render(self, site: Site, node: Node, artifact: str, *, credential: str) -> seed.Rendered:
        """`seed.render(site, node, artifact, credential=credential)`, from the cache when valid."""
        template = seed.template_of(node, artifact)  # NotFound / Invalid as seed.render raises them
        merged = seed.node_vars(site, node, credential=credential)
        key = _key({k: v for k, v in merged.values.items() if k != CREDENTIAL_VAR})
        slot = (node.id, artifact)
        hit = self._entries.get(slot)
        if hit is not None and hit.site is site and hit.key == key and hit.template == template:
            try:
                current = _parts(site, hit.names)
            except jinja2.TemplateNotFound:
                current = ()
            if len(current) == len(hit.parts) and all(a is b for a, b in zip(current, hit.parts, strict=True)):
                self.hits += 1
                fp = fingerprint.of_node(node)
                if hit.fingerprint != fp:
                    with self._lock:
                        self._entries[slot] = replace(hit, fingerprint=fp)
                text = hit.text.replace(hit.stand_in, credential) if hit.stand_in else hit.text
                return seed.Rendered(artifact=artifact, template=template, text=text, merged=merged)
        self.misses += 1
        try:
            names = templates.closure(template, site.templates_dir)
            before = _parts(site, names) if names is not None else None
        except jinja2.TemplateError:
            names = before = None  # seed.render reports it, naming template and line
        if artifact not in seed.CREDENTIAL_ARTIFACTS:
            first = seed.render(site, node, artifact, credential=credential)
            self._store(slot, site, node, key, names, before, first, "")
            return first
        one, two = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        first = seed.render(site, node, artifact, credential=one)  # checked and validated
        values = {k: v.replace(one, two) if isinstance(v, str) else v for k, v in first.merged.values.items()}
        second = seed.render_template(site.templates_dir, template, values)  # the same, but for the credential
        if one in first.text and first.text.replace(one, two) == second:
            self._store(slot, site, node, key, names, before, first, one)
            return seed.Rendered(artifact=artifact, template=template, text=first.text.replace(one, credential),
                                 merged=merged)
        return seed.render(site, node, artifact, credential=credential)  # the credential is transformed

    def _store(self, slot: tuple[int, str], site: Site, node: Node, key: str, names: tuple[str, ...] | None,
               before: tuple[jinja2.Template, ...] | None, rendered: seed.Rendered, stand_in: str) -> None:
        """Keep `rendered` unless a template file changed while it was rendered (or has a dynamic include)."""
        if names is None or before is None or _parts(site, names) != before:
            return
        entry = _Entry(site, key, names, before, rendered.template, rendered.text, stand_in, fingerprint.of_node(node))
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[slot] = entry

    def refetch(self, site: Site, node_id: int, artifact: str, fp: Fingerprint) -> tuple[str, str] | None:
        """(text, stand-in) of the render kept for (node, artifact) if it was made for
        `site` from exactly the rows `fp` and its template files are unchanged; else None."""
        hit = self._entries.get((node_id, artifact))
        if hit is None or hit.site is not site or hit.fingerprint != fp:
            return None
        try:
            current = _parts(site, hit.names)
        except jinja2.TemplateNotFound:
            return None
        if len(current) != len(hit.parts) or not all(a is b for a, b in zip(current, hit.parts, strict=True)):
            return None
        return hit.text, hit.stand_in

    def refetched(self) -> None:
        """Count a fetch `install.refetch` answered from an entry (a hit, without the ORM)."""
        with self._lock:
            self.hits += 1
            self.refetches += 1

    def held_for(self, node_id: int) -> str | None:
        """The install credential this process minted last for node `node_id` (unchecked)."""
        return self._held.get(node_id)

    def held(self, node: Node) -> str | None:
        """The `install` credential this process minted for `node`, if the database still says it
        is the node's live one (`credentials.valid`) and it is younger than REUSE_FOR; else None."""
        held = self._held.get(node.id)
        if held is None or not credentials.valid(node, "install", held):
            return None
        if node.credential_at is None or utcnow() - node.credential_at > REUSE_FOR:
            return None
        return held

    def hold(self, node: Node, credential: str) -> None:
        """Remember the install credential just minted for `node` (it is in the response)."""
        with self._lock:
            if len(self._held) >= self.max_entries:
                self._held.clear()
            self._held[node.id] = credential

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._held.clear()


CACHE = SeedCache()  # the process's one cache (its key carries the Site, so contexts never mix)
