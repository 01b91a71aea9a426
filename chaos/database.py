"""A fresh, migrated database per chaos run, on the server the stack runs."""

import os
from urllib.parse import urlparse

URL_VARIABLES = {"postgres": "OUTBOX_TEST_POSTGRES_URL", "mysql": "OUTBOX_TEST_MYSQL_URL"}
STACK_SERVICE = {"postgres": "postgres", "mysql": "mariadb"}


def recreate(kind: str, name: str):
    """Drop and create ``name`` with the stack's admin user (the test user may create databases)."""
    url = urlparse(os.environ[URL_VARIABLES[kind]])
    if kind == "postgres":
        import psycopg

        with psycopg.connect(os.environ[URL_VARIABLES[kind]], autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
            connection.execute(f'CREATE DATABASE "{name}"')
    else:
        import MySQLdb

        connection = MySQLdb.connect(host=url.hostname, port=url.port, user=url.username, password=url.password)
        cursor = connection.cursor()
        cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        connection.close()
