"""The cliplake dashboard (Streamlit): `cliplake dashboard` or `streamlit run dashboard/app.py`."""
