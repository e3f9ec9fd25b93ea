"""Public collections beyond the bundled samples: TCIA (NBIA REST), Zenodo records, IDC.

Every source downloads resumably with checksums into one layout and converts DICOM series to NIfTI
on arrival (see ``arrival``); the base URLs can be pointed elsewhere (a mirror, or the tests'
recorded server) with an argument or the MEDSYNTH_{TCIA,ZENODO,IDC}_URL environment variables.
"""
