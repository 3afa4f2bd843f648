"""The golden-image repository: versioned read-only BTRFS snapshots of VM
images, replicated incrementally between appliances over SSH.

    REPO/NAME/vN/                  one version (a plain directory, renamed into place whole)
    REPO/NAME/vN/snapshot/         the read-only BTRFS subvolume: the image file + manifest.json
    REPO/NAME/vN/holds/IMAGE       "repo:NAME@vN" for each golden image published from it
    REPO/.incoming/NAME.vN.XXXX/   staging of a version being added or received (hidden)
    REPO/.locks/NAME.lock          one writer per name

A version becomes visible only by the final rename of its staging directory,
after the subvolume is complete, read-only and its manifest verified. (The
kernel refuses to move a read-only subvolume to another directory, and a
received subvolume must stay read-only to keep the received UUID incremental
sends rely on; so the directory around it is what moves.)
"""
