#!/bin/sh
echo golden
