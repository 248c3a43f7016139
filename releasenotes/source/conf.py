project = 'consnap Release Notes'
extensions = ['reno.sphinxext', 'openstackdocstheme']
html_theme = 'openstackdocs'
master_doc = 'index'
