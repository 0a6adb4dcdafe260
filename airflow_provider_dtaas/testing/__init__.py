"""Stand-ins for servers users have and our tests cannot: a SQL Server double speaking TDS.

Installed with the ``testing`` extra (``pip install airflow-provider-dtaas[testing]``) so users can
dry-run their specs without a SQL Server. See the README's "SQL Server double" section.
"""
