"""The labelled protein data set (ARG classes + ``nonarg``) and its train/valid/test splits, built
in steps: ``sources`` (what proteins), ``curation`` (duplicates, conflicts, homolog filter),
``split`` (random or by homology cluster) and ``build`` (the whole run and its manifest).

Sources are Debian packages, so every machine can rebuild the same set:
- ARGs: resfinder-db, one nucleotide CDS file per antibiotic class; translated with table 11.
- non-ARGs: the UniProt sample shipped with mmseqs2-examples, with ARG homologs removed.
Or a user's own labelled protein FASTA (``id|class``, ``a|b|c|class``, ``sp|...`` = non-ARG).
"""
