project = 'consnap'
copyright = '2026, consnap developers'
extensions = ['oslo_config.sphinxext', 'oslo_policy.sphinxext',
              'openstackdocstheme']
openstackdocs_repo_name = 'openstack/consnap'
html_theme = 'openstackdocs'
master_doc = 'index'
