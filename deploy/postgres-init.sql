-- The DTaaS state store lives in its own database; the provider migrates its schema on first run.
CREATE DATABASE dtaas_state OWNER airflow;
