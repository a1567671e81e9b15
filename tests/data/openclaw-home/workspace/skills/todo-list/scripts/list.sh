#!/bin/sh
# Prints the open items (a real skill would call the todo service with $TODO_TOKEN).
[ -n "$TODO_TOKEN" ] || { echo "TODO_TOKEN is not set" >&2; exit 2; }
echo "TODO: buy oat milk"
echo "TODO: book the vet for Pixel"
