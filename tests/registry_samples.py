"""A small valid registry that tests copy and break."""

VALID = '''\
format = 1

[defaults.env]
python = "==3.11.*"

[defaults.smoke]
timeout = 60

[papers.survey]
title = "A Survey of Things: Everything at Once"
venue = "arXiv"
year = 2020
arxiv = "2003.08271"
section = "Survey"
no_code = "A survey; the authors published no code."

[papers.longformer]
title = "Longformer: The Long-Document Transformer"
venue = "arXiv"
year = 2020
arxiv = "2004.05150"
section = "Sparse Transformers"
tags = ["attention"]

[papers.longformer.impl.allenai]
description = "The authors' code"

[papers.longformer.impl.allenai.code]
git = "https://github.com/allenai/longformer"
commit = "caefee668e39cacdece7dd603a0bebf24df6d8ca"
official = true

[papers.longformer.impl.allenai.env]
requirements = ["torch==2.13.0"]

[papers.longformer.impl.allenai.smoke]
command = "python -c 'import longformer'"

[papers.longformer.impl.port.code]
git = "https://github.com/someone/longformer-port"
commit = "0123456789abcdef0123456789abcdef01234567"

[papers.longformer.impl.port.smoke]
script = """
import longformer_port
print("OK")
"""
expect = "OK"
'''
