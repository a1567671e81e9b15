#!/bin/sh
# Prints the open items (a real skill would call the todo service with $TODO_TOKEN).
echo "TODO: buy oat milk"
echo "TODO: book the vet for Pixel"
