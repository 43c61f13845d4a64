"""Row-level security, the second wall behind the repositories' tenant filter.

Migrations call these helpers for every tenant-owned table. The policy compares the row's
tenant with `app.tenant_id`, which a tenant unit of work sets for its transaction while
acting as the `chairfill_app` role (see api/core/db.py)."""

from __future__ import annotations

from alembic import op
from api.core.db import APP_ROLE


def create_app_role() -> None:
    op.execute(
        f"""
        DO $$
        BEGIN
          IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
            CREATE ROLE {APP_ROLE} NOLOGIN;
          END IF;
          -- The connecting role must be able to SET ROLE to it (superusers always can).
          IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
            EXECUTE format('GRANT {APP_ROLE} TO %I', current_user);
          END IF;
        END $$;
        """
    )
    op.execute(f"GRANT USAGE ON SCHEMA public TO {APP_ROLE}")


def enable_tenant_rls(table: str, column: str = "tenant_id") -> None:
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {APP_ROLE}")
    op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY tenant_isolation ON {table} "
        f"USING ({column} = current_setting('app.tenant_id', true)) "
        f"WITH CHECK ({column} = current_setting('app.tenant_id', true))"
    )


def disable_tenant_rls(table: str) -> None:
    op.execute(f"DROP POLICY IF EXISTS tenant_isolation ON {table}")
    op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
