"""OneID: identifiers, the identity graph kernel, merge / unmerge."""
