"""The streaming shell: faust agents and tables around the pure engine."""
