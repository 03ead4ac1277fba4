"""python packages: projects and files, the index over their OCI artifacts

Revision ID: a7d3e9c41b02
Revises: c41e7b2d9a10
Create Date: 2026-11-25 09:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'a7d3e9c41b02'
down_revision = 'c41e7b2d9a10'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('python_projects',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('registry_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['registry_id'], ['registries.id'], name=op.f('fk_python_projects_registry_id_registries'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_python_projects')),
    sa.UniqueConstraint('registry_id', 'name', name=op.f('uq_python_projects_registry_id'))
    )
    with op.batch_alter_table('python_projects', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_python_projects_registry_id'), ['registry_id'], unique=False)

    op.create_table('python_files',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('registry_id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.String(length=128), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('filetype', sa.String(length=16), nullable=False),
    sa.Column('python_version', sa.String(length=64), nullable=True),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('blake2_256', sa.String(length=64), nullable=False),
    sa.Column('md5', sa.String(length=32), nullable=False),
    sa.Column('requires_python', sa.Text(), nullable=True),
    sa.Column('metadata_version', sa.String(length=8), nullable=False),
    sa.Column('metadata_sha256', sa.String(length=64), nullable=False),
    sa.Column('metadata_size', sa.BigInteger(), nullable=False),
    sa.Column('manifest_digest', sa.String(length=150), nullable=False),
    sa.Column('uploaded_by', sa.String(length=64), nullable=True),
    sa.Column('uploaded_at', sa.DateTime(), nullable=False),
    sa.Column('yanked', sa.Boolean(), nullable=False),
    sa.Column('yanked_reason', sa.Text(), nullable=True),
    sa.Column('deleted_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['project_id'], ['python_projects.id'], name=op.f('fk_python_files_project_id_python_projects'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['registry_id'], ['registries.id'], name=op.f('fk_python_files_registry_id_registries'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_python_files')),
    sa.UniqueConstraint('registry_id', 'filename', name=op.f('uq_python_files_registry_id'))
    )
    with op.batch_alter_table('python_files', schema=None) as batch_op:
        batch_op.create_index('ix_python_files_content', ['registry_id', 'sha256'], unique=False)
        batch_op.create_index('ix_python_files_release', ['project_id', 'version'], unique=False)


def downgrade():
    with op.batch_alter_table('python_files', schema=None) as batch_op:
        batch_op.drop_index('ix_python_files_release')
        batch_op.drop_index('ix_python_files_content')

    op.drop_table('python_files')
    with op.batch_alter_table('python_projects', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_python_projects_registry_id'))

    op.drop_table('python_projects')
