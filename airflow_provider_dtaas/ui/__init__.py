"""The live progress view: an Airflow plugin (FastAPI app and page) over the DTaaS state store."""
