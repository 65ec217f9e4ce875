"""Adapters: claims as payers and hospitals send them (ASC X12 837, FHIR R4 `Claim`) read
into encounter events, beside the contract and with no I/O of their own."""
