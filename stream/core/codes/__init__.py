"""Code metadata: ICD-10-CM, CPT/HCPCS, and the code sets the rules are written in."""
