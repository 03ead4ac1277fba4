"""Retention: the sweeper's pass that removes what a registry's policies no longer keep.

Per repository a policy matches:

1. keep-N: the tags matching the policy's tag pattern, newest push first, past the first N
   (protected tags neither count nor go); each such tag is removed, and its manifest too when
   nothing keeps it any more;
2. untagged: manifests without a tag, pushed more than D days ago, that no index of the
   repository names and whose subject (for a referrer) is gone.

A manifest goes through the graph-aware delete (`app.registry.deletion`), so its referrers and
the index children nothing else uses go with it, and only when nothing in that plan carries a
tag that stays: a protected or immutable tag, a tag inside the N, a tag of another policy.
Selection is done with indexed queries in batches (`ix_tags_repository_updated`,
`ix_manifests_repository_created`); nothing reads every tag of a repository at once.

A dry run walks the same path and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, exists, or_, select, update
from sqlalchemy.orm import aliased

from app.access import audit
from app.models import Manifest, ManifestReference, Repository, RetentionPolicy, Tag, TagRule, db
from app.models.base import utcnow
from app.registry import deletion, gc
from app.registry.errors import RegistryError
from app.registry.names import RESERVED_PREFIX
from app.registry.retention_rules import glob, matches_repository

BATCH = 200


@dataclass(frozen=True)
class Removal:
    """One thing a policy removes (or, in a dry run, would remove)."""

    repository: str
    policy_id: int
    kind: str  # "tag" or "manifest"
    digest: str
    reason: str
    tag: str | None = None
    media_type: str | None = None
    artifact_type: str | None = None
    tags: tuple[str, ...] = ()

    def as_json(self) -> dict:
        out = {
            "repository": self.repository,
            "policy": self.policy_id,
            "kind": self.kind,
            "digest": self.digest,
            "reason": self.reason,
        }
        if self.kind == "tag":
            out["tag"] = self.tag
        else:
            out.update(
                media_type=self.media_type, artifact_type=self.artifact_type, tags=list(self.tags)
            )
        return out


@dataclass
class _Run:
    """What one policy has removed so far in one repository (a dry run: would have)."""

    repo: Repository
    policy: RetentionPolicy
    protected: list[str]
    dry_run: bool
    tags: set[str] = field(default_factory=set)
    manifests: set[str] = field(default_factory=set)


# ---- which policies and repositories --------------------------------------------------------


def policies_of(registry_id: int) -> list[RetentionPolicy]:
    return list(
        db.session.execute(
            select(RetentionPolicy)
            .where(RetentionPolicy.registry_id == registry_id)
            .order_by(RetentionPolicy.id)
        ).scalars()
    )


def _repositories(policy: RetentionPolicy, prefix: str) -> Iterator[int]:
    """Ids of the registry's OCI repositories the policy's pattern matches, in batches; Python
    package repositories (the reserved prefix) are never touched."""
    last = 0
    while True:
        batch = list(
            db.session.execute(
                select(Repository.id)
                .where(
                    Repository.registry_id == policy.registry_id,
                    Repository.id > last,
                    glob(Repository.name, prefix + policy.repository_pattern),
                    ~glob(Repository.name, f"{prefix}{RESERVED_PREFIX}*"),
                )
                .order_by(Repository.id)
                .limit(BATCH)
            ).scalars()
        )
        if not batch:
            return
        yield from batch
        last = batch[-1]


def _protected(policy: RetentionPolicy, path: str) -> list[str]:
    """Tag patterns nothing may remove in this repository: the registry's immutability rules
    and the protection pattern of every policy that applies to it."""
    rules = db.session.execute(
        select(TagRule.pattern).where(TagRule.registry_id == policy.registry_id)
    ).scalars()
    protected = list(rules)
    for other in policies_of(policy.registry_id):
        if other.enabled and other.protect_pattern and matches_repository(other, path):
            protected.append(other.protect_pattern)
    if policy.protect_pattern and policy.protect_pattern not in protected:
        protected.append(policy.protect_pattern)
    return protected


# ---- keep the N newest tags -----------------------------------------------------------------


def _tags_beyond(run: _Run) -> Iterator[list[Tag]]:
    """Tags matching the pattern and no protection, newest first, after the first N: an index
    range scan on (repository, updated_at), in keyset-paged batches."""
    policy = run.policy
    query = (
        select(Tag)
        .where(
            Tag.repository_id == run.repo.id,
            # `name || ''`: matched row by row, so that no planner reads the tags through the
            # (repository, name) index and sorts them all, instead of walking them newest first.
            glob(Tag.name + "", policy.tag_pattern),
            *(~glob(Tag.name + "", p) for p in run.protected),
        )
        .order_by(Tag.updated_at.desc(), Tag.id.desc())
        .limit(BATCH)
    )
    batch = list(db.session.execute(query.offset(policy.keep_count)).scalars())
    while batch:
        yield batch
        last = batch[-1]
        older = or_(
            Tag.updated_at < last.updated_at,
            and_(Tag.updated_at == last.updated_at, Tag.id < last.id),
        )
        batch = list(db.session.execute(query.where(older)).scalars())


def _remove_tag(run: _Run, tag: Tag, digest: str) -> bool:
    """Remove the tag unless a push moved or re-pushed it since it was selected."""
    if not run.dry_run:
        gone = db.session.execute(
            delete(Tag).where(
                Tag.id == tag.id,
                Tag.manifest_id == tag.manifest_id,
                Tag.updated_at == tag.updated_at,
            )
        ).rowcount
        if not gone:
            return False
        gc.note([digest])
        details = {"digest": digest, "retention_policy": run.policy.id}
        audit.on_repository("tag.delete", run.repo, tag.name, details)
    run.tags.add(tag.name)
    return True


def _keep_newest(run: _Run) -> Iterator[Removal]:
    n, pattern = run.policy.keep_count, run.policy.tag_pattern
    reason = f"beyond the {n} most recently pushed tags matching {pattern!r}"
    for batch in _tags_beyond(run):
        ids = {t.manifest_id for t in batch}
        rows = db.session.execute(select(Manifest).where(Manifest.id.in_(ids))).scalars()
        by_id = {m.id: m for m in rows}
        untagged: dict[int, Manifest] = {}
        for tag in batch:
            manifest = by_id.get(tag.manifest_id)
            if manifest is not None and _remove_tag(run, tag, manifest.digest):
                yield Removal(
                    run.repo.name, run.policy.id, "tag", manifest.digest, reason, tag=tag.name
                )
                untagged[manifest.id] = manifest
        for manifest in untagged.values():
            yield from _remove_manifest(run, manifest, f"its tags removed ({reason})")


# ---- untagged manifests past their age ------------------------------------------------------


def _untagged_before(run: _Run, cutoff: datetime) -> Iterator[list[Manifest]]:
    """Manifests of the repository pushed before the cutoff with no tag, that no other
    manifest of the repository names (its own referrers aside), and whose subject, for a
    referrer, is not in the repository: indexed existence queries, keyset-paged batches."""
    user, subject = aliased(Manifest), aliased(Manifest)
    named = (
        exists()
        .where(
            ManifestReference.digest == Manifest.digest,
            ManifestReference.manifest_id == user.id,
            # `+ 0`: a filter, never an index, so the lookup starts from the few references to
            # this digest rather than from every manifest of the repository.
            user.repository_id + 0 == run.repo.id,
            user.id != Manifest.id,
            or_(user.subject_digest.is_(None), user.subject_digest != Manifest.digest),
        )
        .correlate(Manifest)
    )
    subject_here = (
        exists()
        .where(subject.repository_id == run.repo.id, subject.digest == Manifest.subject_digest)
        .correlate(Manifest)
    )
    query = (
        select(Manifest)
        .where(
            Manifest.repository_id == run.repo.id,
            Manifest.created_at < cutoff,
            ~exists().where(Tag.manifest_id == Manifest.id).correlate(Manifest),
            ~named,
            ~subject_here,
        )
        .order_by(Manifest.created_at, Manifest.id)
        .limit(BATCH)
    )
    batch = list(db.session.execute(query).scalars())
    while batch:
        yield batch
        last = batch[-1]
        later = or_(
            Manifest.created_at > last.created_at,
            and_(Manifest.created_at == last.created_at, Manifest.id > last.id),
        )
        batch = list(db.session.execute(query.where(later)).scalars())


def _remove_untagged(run: _Run, now: datetime) -> Iterator[Removal]:
    days = run.policy.untagged_days
    cutoff = now - timedelta(days=days)
    for batch in _untagged_before(run, cutoff):
        for manifest in batch:
            if manifest.digest not in run.manifests:
                yield from _remove_manifest(run, manifest, f"untagged for more than {days} days")


# ---- removing a manifest and what goes with it ----------------------------------------------


def _kept_by_index_or_subject(run: _Run, manifest: Manifest) -> bool:
    """A manifest of the repository that stays names it (an index), or it is a referrer whose
    subject stays."""
    users = db.session.execute(
        select(Manifest.digest)
        .join(ManifestReference, ManifestReference.manifest_id == Manifest.id)
        .where(
            Manifest.repository_id + 0 == run.repo.id,  # from the digest's references (above)
            ManifestReference.digest == manifest.digest,
            Manifest.id != manifest.id,
            or_(Manifest.subject_digest.is_(None), Manifest.subject_digest != manifest.digest),
        )
    ).scalars()
    if any(u not in run.manifests for u in users):
        return True
    subject = manifest.subject_digest
    if subject is None or subject in run.manifests:
        return False
    return (
        db.session.execute(
            select(Manifest.id).where(
                Manifest.repository_id == run.repo.id, Manifest.digest == subject
            )
        ).first()
        is not None
    )


def _remove_manifest(run: _Run, manifest: Manifest, reason: str) -> Iterator[Removal]:
    """Delete the manifest graph-aware, unless something that stays needs it or anything in
    its deletion plan carries a tag that stays."""
    if manifest.digest in run.manifests or _kept_by_index_or_subject(run, manifest):
        return
    try:
        plan = deletion.plan(run.repo, manifest.digest)
    except RegistryError:
        return  # deleted meanwhile
    if any(t not in run.tags for r in plan for t in r.tags):
        return
    if not run.dry_run:
        try:
            # Every retention deletion of a manifest happens here (see the audit log).
            plan = deletion.delete_manifest(run.repo, manifest.digest)
        except RegistryError:
            return  # tagged immutably or deleted meanwhile: left for the next pass
    for r in plan:
        run.manifests.add(r.digest)
        why = reason if r.reason == "requested" else r.reason
        yield Removal(
            run.repo.name,
            run.policy.id,
            "manifest",
            r.digest,
            why,
            media_type=r.media_type,
            artifact_type=r.artifact_type,
            tags=r.tags,
        )


# ---- applying policies --------------------------------------------------------------------


def apply(
    policy: RetentionPolicy,
    prefix: str,
    *,
    dry_run: bool,
    now: datetime | None = None,
    checkpoint: Callable[[], None] | None = None,
) -> Iterator[Removal]:
    """What the policy removes, repository by repository (`prefix` is `<org>/<registry>/`).
    `checkpoint` runs after each repository (the sweeper commits there)."""
    now = now or utcnow()
    for repo_id in _repositories(policy, prefix):
        repo = db.session.get(Repository, repo_id)
        if repo is None:
            continue
        path = repo.name[len(prefix) :]
        run = _Run(repo, policy, _protected(policy, path), dry_run)
        if policy.keep_count is not None:
            yield from _keep_newest(run)
        if policy.untagged_days is not None:
            yield from _remove_untagged(run, now)
        if checkpoint is not None:
            checkpoint()


def claim(policy_id: int, interval: timedelta, now: datetime) -> bool:
    """Take a policy for a run when its last run is older than the interval; one sweeper wins
    when several try at once."""
    due = or_(RetentionPolicy.last_run_at.is_(None), RetentionPolicy.last_run_at <= now - interval)
    return bool(
        db.session.execute(
            update(RetentionPolicy)
            .where(RetentionPolicy.id == policy_id, RetentionPolicy.enabled.is_(True), due)
            .values(last_run_at=now)
        ).rowcount
    )
