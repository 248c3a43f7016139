# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.

"""Sphinx configuration of the consnap API reference (os-api-ref)."""

import os
import sys

extensions = [
    'os_api_ref',
    'openstackdocstheme',
]

html_theme = 'openstackdocs'
html_theme_options = {
    'sidebar_mode': 'toc',
}

openstackdocs_repo_name = 'openstack/consnap'
openstackdocs_use_storyboard = False
openstackdocs_auto_name = False
openstackdocs_bug_project = 'consnap'
openstackdocs_bug_tag = 'api-ref'

sys.path.insert(0, os.path.abspath('../../'))
sys.path.insert(0, os.path.abspath('../'))
sys.path.insert(0, os.path.abspath('./'))

source_suffix = '.rst'
master_doc = 'index'

project = 'consnap API Reference'
copyright = 'OpenStack Foundation'

add_module_names = False
show_authors = False
pygments_style = 'native'
htmlhelp_basename = 'consnapdoc'

latex_documents = [
    ('index', 'consnap.tex', 'OpenStack consnap API Documentation',
     'OpenStack Foundation', 'manual'),
]
