"""Tests of the sources, one package per source."""
