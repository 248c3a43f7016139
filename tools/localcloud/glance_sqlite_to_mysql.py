"""Copy an older localcloud Glance sqlite database into its MariaDB database.

    <cloud venv>/bin/python glance_sqlite_to_mysql.py SQLITE_PATH MYSQL_URL

Run by localcloud when Glance moves from sqlite to MariaDB: the target
already has Glance's schema (``glance-manage db_sync``); every row of every
table the two share (columns they share) is copied, so that image ids that
tests and servers refer to stay valid.  The target's rows are replaced
(idempotent).  Run only while Glance is stopped.
"""

import sys

import sqlalchemy as sa


def main(src_path, dst_url):
    src = sa.create_engine('sqlite:///%s' % src_path)
    dst = sa.create_engine(dst_url)
    smeta, dmeta = sa.MetaData(), sa.MetaData()
    smeta.reflect(src)
    dmeta.reflect(dst)
    copied = {}
    with src.connect() as s, dst.begin() as d:
        d.execute(sa.text('SET FOREIGN_KEY_CHECKS=0'))
        for table in dmeta.sorted_tables:
            if table.name == 'alembic_version' or table.name not in \
                    smeta.tables:
                continue
            stable = smeta.tables[table.name]
            cols = [c.name for c in table.columns if c.name in stable.c]
            rows = [dict(r._mapping) for r in s.execute(
                sa.select(*[stable.c[c] for c in cols]))]
            d.execute(table.delete())
            if rows:
                d.execute(table.insert(), rows)
            copied[table.name] = len(rows)
        d.execute(sa.text('SET FOREIGN_KEY_CHECKS=1'))
    print(' '.join('%s=%d' % kv for kv in sorted(copied.items()) if kv[1]))


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2])
