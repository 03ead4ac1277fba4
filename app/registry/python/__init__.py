"""Python packages in the registry core: project names, the index rows that list a registry's
projects and files, and taking files back (yank, delete). Every front end that shows or changes
them (the PyPI API, the console, the command line) goes through here."""
