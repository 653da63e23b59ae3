"""node_tags: each node's tags as indexed rows, kept by triggers on nodes (issue 14: tag filters)

A tag filter (`GET /api/v1/nodes?tag=`, the dashboard, `dgxie node power --tag`) scanned every
node's JSON (`json_each` on SQLite, `@>` without an index on PostgreSQL): ~4.5 ms per query at
10,000 nodes on SQLite. `node_tags` (node_id, tag) with an index on the tag makes it a lookup.

The database writes it, not dgxie: triggers on `nodes` (so the ORM, the bulk COPY/executemany
path, the CLI and raw SQL all keep it in step) replace a node's rows when its tags are written;
`ON DELETE CASCADE` drops them with the node. On PostgreSQL an insert is one statement-level
trigger over the statement's new rows (a bulk COPY of 10,000 nodes is one INSERT ... SELECT);
an update of `tags` is a row trigger. SQLite has row triggers only.

Revision ID: 0018
Revises: 0017
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | Sequence[str] | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQLITE = (
    """CREATE TRIGGER dgxie_node_tags_insert AFTER INSERT ON nodes BEGIN
        INSERT INTO node_tags (node_id, tag) SELECT DISTINCT NEW.id, value FROM json_each(NEW.tags);
    END""",
    """CREATE TRIGGER dgxie_node_tags_update AFTER UPDATE OF tags ON nodes BEGIN
        DELETE FROM node_tags WHERE node_id = NEW.id;
        INSERT INTO node_tags (node_id, tag) SELECT DISTINCT NEW.id, value FROM json_each(NEW.tags);
    END""",
    "INSERT INTO node_tags (node_id, tag) SELECT DISTINCT nodes.id, j.value FROM nodes, json_each(nodes.tags) AS j",
)
POSTGRESQL = (
    """CREATE FUNCTION dgxie_node_tags_insert() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO node_tags (node_id, tag)
            SELECT DISTINCT n.id, t FROM new_nodes AS n, jsonb_array_elements_text(n.tags) AS t;
        RETURN NULL;
    END $$""",
    """CREATE FUNCTION dgxie_node_tags_update() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        DELETE FROM node_tags WHERE node_id = NEW.id;
        INSERT INTO node_tags (node_id, tag) SELECT DISTINCT NEW.id, t FROM jsonb_array_elements_text(NEW.tags) AS t;
        RETURN NULL;
    END $$""",
    "CREATE TRIGGER dgxie_node_tags_insert AFTER INSERT ON nodes REFERENCING NEW TABLE AS new_nodes "
    "FOR EACH STATEMENT EXECUTE FUNCTION dgxie_node_tags_insert()",
    "CREATE TRIGGER dgxie_node_tags_update AFTER UPDATE OF tags ON nodes "
    "FOR EACH ROW EXECUTE FUNCTION dgxie_node_tags_update()",
    "INSERT INTO node_tags (node_id, tag) SELECT DISTINCT nodes.id, t FROM nodes, jsonb_array_elements_text(nodes.tags) AS t",
)


def upgrade() -> None:
    op.create_table(
        "node_tags",
        sa.Column("node_id", sa.Integer(), nullable=False),
        sa.Column("tag", sa.String(length=63), nullable=False),
        sa.ForeignKeyConstraint(["node_id"], ["nodes.id"], name=op.f("fk_node_tags_node_id_nodes"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("node_id", "tag", name=op.f("pk_node_tags")),
    )
    op.create_index("ix_node_tags_tag", "node_tags", ["tag", "node_id"])
    for statement in POSTGRESQL if op.get_bind().dialect.name == "postgresql" else SQLITE:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name in ("insert", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS dgxie_node_tags_{name} ON nodes")
            op.execute(f"DROP FUNCTION IF EXISTS dgxie_node_tags_{name}()")
    else:
        for name in ("insert", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS dgxie_node_tags_{name}")
    op.drop_index("ix_node_tags_tag", table_name="node_tags")
    op.drop_table("node_tags")
